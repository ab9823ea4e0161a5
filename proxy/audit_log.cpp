#include "proxy/audit_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tokengate::proxy {

audit_log::audit_log(log_sink& log, const std::filesystem::path& file) : log_(log) {
  if (file.empty())
    return;
  fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw std::runtime_error("cannot open audit_log_file " + file.string() + ": " +
                             std::strerror(errno));
}

audit_log::~audit_log() {
  if (fd_ >= 0)
    ::close(fd_);
}

void audit_log::record(const tokenapi::audit_event& e) {
  json_line line;
  line.add("log", "audit")
      .add("operation", e.operation)
      .add("actor", e.actor_id)
      .add("target", e.target_id)
      .add("target_name", e.target_name)
      .add("client", e.client)
      .add("changed", e.changed)
      .add("result", e.status);
  if (e.previous_value)
    line.add_bool("previous_value", true);
  auto text = std::move(line).finish();
  // Queued for the log writer: a thread serving requests never waits for stdout.
  log_.write(text);
  if (fd_ < 0)
    return;
  text.push_back('\n');
  {
    std::lock_guard lock(mutex_);
    for (std::string_view rest = text; !rest.empty();) {
      const auto n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        log_.event(log_level::error, "could not append to the audit log file",
                   [&](json_line& l) { l.add("error", std::strerror(errno)); });
        return;
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Only a change is synced (a refusal changes nothing), and outside the lock, so that the
  // refusals appended meanwhile do not wait for the disk.
  if (e.status < 300 && ::fdatasync(fd_) != 0)
    log_.event(log_level::error, "could not sync the audit log file",
               [&](json_line& l) { l.add("error", std::strerror(errno)); });
}

} // namespace tokengate::proxy
