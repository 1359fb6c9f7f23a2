// A four-letter word to a ZooKeeper server (`ruok`, `mntr`) over plain TCP: kiln-node's
// health gate on a master asks its own ZooKeeper, kiln-fleet asks every master's.
#pragma once

#include <chrono>
#include <string>

namespace kiln::util {

// Sends `word` to HOST:PORT and returns the answer (the server closes the connection
// after it; at most 64 bytes are read). Connecting and answering share `deadline`.
// Throws Error(HOST:PORT, ...) when there is no connection or no answer in time.
std::string four_letter_word(const std::string& address, const std::string& word, std::chrono::milliseconds deadline);

} // namespace kiln::util
