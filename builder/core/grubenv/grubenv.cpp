#include "core/grubenv/grubenv.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::grubenv {

namespace {

std::string
quoted(std::string_view text)
{
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Empty when `name` can be a GRUB variable name in a block, else why not.
std::string
name_problem(std::string_view name)
{
  if (name.empty()) {
    return "empty name";
  }
  if (name.front() == '#') {
    return "name starts with '#' (GRUB would read the line as a comment)";
  }
  if (name.find('=') != std::string_view::npos) {
    return "name contains '='";
  }
  if (name.find('\n') != std::string_view::npos) {
    return "name contains a newline";
  }
  if (name.find('\0') != std::string_view::npos) {
    return "name contains a NUL byte";
  }
  return {};
}

void
append_escaped(std::string& out, std::string_view value)
{
  for (char c : value) {
    if (c == '\\' || c == '\n') {
      out += '\\';
    }
    out += c;
  }
}

void
pwrite_all(int fd, std::string_view data, off_t offset, const std::string& subject)
{
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(subject, "write failed: " + errno_text(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<off_t>(n);
  }
}

} // namespace

std::optional<std::string>
Env::get(std::string_view name) const
{
  for (const auto& line : m_lines) {
    if (!line.comment && line.name == name) {
      return line.value;
    }
  }
  return std::nullopt;
}

void
Env::set(std::string_view name, std::string_view value)
{
  if (std::string problem = name_problem(name); !problem.empty()) {
    throw Error("grubenv", "invalid variable name " + quoted(name) + ": " + problem);
  }
  if (value.find('\0') != std::string_view::npos) {
    throw Error("grubenv", "value of " + std::string(name) + " contains a NUL byte");
  }
  for (auto& line : m_lines) {
    if (!line.comment && line.name == name) {
      line.value = value;
      return;
    }
  }
  m_lines.push_back(Line{false, std::string(name), std::string(value)});
}

bool
Env::unset(std::string_view name)
{
  auto it =
    std::find_if(m_lines.begin(), m_lines.end(), [&](const Line& line) { return !line.comment && line.name == name; });
  if (it == m_lines.end()) {
    return false;
  }
  m_lines.erase(it);
  return true;
}

void
Env::add_comment(std::string_view text)
{
  if (text.empty() || text.front() != '#' || text.find('\n') != std::string_view::npos ||
      text.find('\0') != std::string_view::npos) {
    throw Error("grubenv", "invalid comment line " + quoted(text) + ": it must start with '#' and be one line");
  }
  m_lines.push_back(Line{true, std::string(text), {}});
}

std::vector<Entry>
Env::entries() const
{
  std::vector<Entry> out;
  for (const auto& line : m_lines) {
    if (!line.comment) {
      out.push_back(Entry{line.name, line.value});
    }
  }
  return out;
}

std::vector<std::string>
Env::comments() const
{
  std::vector<std::string> out;
  for (const auto& line : m_lines) {
    if (line.comment) {
      out.push_back(line.name);
    }
  }
  return out;
}

std::string
Env::body() const
{
  std::string out;
  for (const auto& line : m_lines) {
    out += line.name;
    if (!line.comment) {
      out += '=';
      append_escaped(out, line.value);
    }
    out += '\n';
  }
  return out;
}

Env
parse(std::string_view block, const std::string& subject, std::optional<std::size_t> expected_size)
{
  if (!block.starts_with(k_signature)) {
    throw Error(subject, "not a GRUB environment block: it does not start with the line \"# GRUB Environment Block\"");
  }
  if (expected_size && block.size() != *expected_size) {
    throw Error(subject, "wrong size: the block is " + std::to_string(block.size()) + " bytes, expected " +
                           std::to_string(*expected_size));
  }
  // The padding is the trailing run of '#'; what precedes it must end a line.
  size_t end = block.size();
  while (end > k_signature.size() && block[end - 1] == '#') {
    --end;
  }
  if (block[end - 1] != '\n') {
    throw Error(subject, "broken block: byte " + std::to_string(end - 1) +
                           " before the '#' padding is not a newline (unterminated last line)");
  }

  Env env;
  size_t pos = k_signature.size();
  auto where = [](size_t offset) { return "at offset " + std::to_string(offset); };
  while (pos < end) {
    size_t start = pos;
    if (block[pos] == '#') {
      size_t nl = block.find('\n', pos);
      std::string_view text = block.substr(pos, nl - pos);
      if (text.find('\0') != std::string_view::npos) {
        throw Error(subject, "broken block: comment line " + where(start) + " contains a NUL byte");
      }
      env.add_comment(text);
      pos = nl + 1;
      continue;
    }
    size_t eq = pos;
    while (eq < end && block[eq] != '=' && block[eq] != '\n') {
      ++eq;
    }
    if (eq == end || block[eq] != '=') {
      throw Error(subject, "broken block: record " + where(start) + " has no '='");
    }
    std::string_view name = block.substr(pos, eq - pos);
    if (std::string problem = name_problem(name); !problem.empty()) {
      throw Error(subject, "broken block: record " + where(start) + ": " + problem);
    }
    std::string value;
    pos = eq + 1;
    for (;;) {
      if (pos >= end) {
        throw Error(subject, "broken block: record " + where(start) + " is not terminated by a newline");
      }
      char c = block[pos];
      if (c == '\n') {
        ++pos;
        break;
      }
      if (c == '\\') {
        if (pos + 1 >= end) {
          throw Error(subject, "broken block: record " + where(start) + " ends inside an escape");
        }
        c = block[++pos];
      }
      if (c == '\0') {
        throw Error(subject, "broken block: record " + where(start) + " contains a NUL byte");
      }
      value += c;
      ++pos;
    }
    if (env.get(name)) {
      throw Error(subject,
                  "broken block: variable " + std::string(name) + " is set twice (second " + where(start) + ")");
    }
    env.set(name, value);
  }
  return env;
}

std::string
serialize(const Env& env, std::size_t size, const std::string& subject)
{
  std::string out(k_signature);
  out += env.body();
  if (out.size() > size) {
    throw Error(subject, "the environment needs " + std::to_string(out.size()) + " bytes but the block has " +
                           std::to_string(size) + " (GRUB environment blocks never grow)");
  }
  out.append(size - out.size(), '#');
  return out;
}

Env
read(const fs::path& path, std::optional<std::size_t> expected_size)
{
  return parse(util::read_file(path), path.string(), expected_size);
}

void
write_atomic(const fs::path& path, const Env& env, std::optional<std::size_t> size)
{
  // Follow a symlink (CentOS keeps /boot/grub2/grubenv -> ../efi/EFI/centos/grubenv):
  // replacing the link itself would detach GRUB's copy from the path users edit.
  std::error_code ec;
  fs::path target = fs::exists(fs::symlink_status(path, ec)) ? fs::weakly_canonical(path, ec) : path;
  if (ec) {
    target = path;
  }
  unsigned mode = 0644;
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
    if (!size && S_ISREG(st.st_mode)) {
      // Keep the existing size, and never replace something that is not a block.
      std::string old = util::read_file(target);
      parse(old, target.string());
      size = old.size();
    }
  } else if (errno != ENOENT) {
    throw Error(target.string(), errno_text(errno));
  }
  std::string block = serialize(env, size.value_or(k_default_size), target.string());
  util::AtomicFile file(target, mode);
  file.write(block);
  file.commit();
}

void
write_in_place(const fs::path& path, const Env& env)
{
  std::string subject = path.string();
  util::Fd fd = util::open_file(path, O_RDWR);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw Error(subject, "stat failed: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(subject, "not a regular file; an in-place update needs an existing environment block file");
  }
  std::string old = util::read_file(path);
  parse(old, subject, static_cast<std::size_t>(st.st_size));
  std::string block = serialize(env, old.size(), subject);
  pwrite_all(fd.get(), block, 0, subject);
  if (::fsync(fd.get()) != 0) {
    throw Error(subject, "fsync failed: " + errno_text(errno));
  }
  fd.close(subject);
}

Env
update(const fs::path& path, const std::function<void(Env&)>& edit, WriteMode mode)
{
  Env env;
  std::error_code ec;
  if (mode == WriteMode::atomic && !fs::exists(path, ec) && !ec) {
    env.add_comment(k_editenv_warning);
  } else {
    env = read(path);
  }
  edit(env);
  if (mode == WriteMode::atomic) {
    write_atomic(path, env);
  } else {
    write_in_place(path, env);
  }
  return env;
}

} // namespace kiln::grubenv
