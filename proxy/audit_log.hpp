#pragma once

#include "proxy/log.hpp"
#include "tokenapi/audit.hpp"

#include <filesystem>
#include <mutex>

namespace tokengate::proxy {

/// The audit trail (README "Audit trail"): each event is one JSON line {"log":"audit", ...}
/// queued at once in the log stream, and, with `audit_log_file`, appended to that file (created
/// with mode 0600); a change's line is synced before `record` returns, a refusal's is not.
/// Thread-safe.
class audit_log : public tokenapi::audit_sink {
public:
  /// Throws std::runtime_error (one line) when `file` cannot be opened for appending.
  audit_log(log_sink& log, const std::filesystem::path& file);
  ~audit_log() override;
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  void record(const tokenapi::audit_event& e) override;

private:
  log_sink& log_;
  int fd_ = -1;
  std::mutex mutex_; ///< one event at a time in the file
};

} // namespace tokengate::proxy
