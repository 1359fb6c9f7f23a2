// The JSON form of kiln-node's reports (report.hpp), what `kiln-node --json` prints: the
// one place that names their keys. nlohmann::json's own conversion (json j = report).
#pragma once

#include "core/node/report.hpp"

#include <nlohmann/json.hpp>

namespace kiln::node {

void to_json(nlohmann::json& j, const SlotReport& r);
void to_json(nlohmann::json& j, const NextBoot& r);
void to_json(nlohmann::json& j, const StatusReport& r);
void to_json(nlohmann::json& j, const ReimageReport& r);
void to_json(nlohmann::json& j, const RollbackReport& r);
void to_json(nlohmann::json& j, const MarkGoodReport& r);
void to_json(nlohmann::json& j, const PartitionGrowth& r);
void to_json(nlohmann::json& j, const IdentityReport& r);
void to_json(nlohmann::json& j, const InstallReport& r);
void to_json(nlohmann::json& j, const GrowDataReport& r);
void to_json(nlohmann::json& j, const WipeReport& r);

} // namespace kiln::node
