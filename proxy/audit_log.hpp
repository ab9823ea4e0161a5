#pragma once

#include "proxy/log.hpp"
#include "tokenapi/audit.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace tokengate::proxy {

/// The audit trail (README "Audit trail"): each event is one JSON line {"log":"audit", ...}
/// queued at once in the log stream, and, with `audit_log_file`, appended to that file (created
/// with mode 0600); a change's line is synced before `record` returns, a refusal's is not.
/// An append that fails is cut back off the file, which keeps whole lines; its event and every
/// later one are then held (refusals' within `max_held_bytes`, the rest counted and dropped) and
/// `ready()` is false until they have been written, in order. One error line per outage.
/// Thread-safe.
class audit_log : public tokenapi::audit_sink {
public:
  static constexpr std::size_t default_max_held_bytes = 1024 * 1024;

  /// Throws std::runtime_error (one line) when `file` cannot be opened for appending.
  audit_log(log_sink& log, const std::filesystem::path& file,
            std::size_t max_held_bytes = default_max_held_bytes);
  ~audit_log() override;
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  void record(const tokenapi::audit_event& e) override;
  [[nodiscard]] bool ready() override;

  /// Opens `audit_log_file` again (SIGHUP: after logrotate has moved it away, the events go to
  /// a new file at the same path). When it cannot be opened, logs one error line and keeps the
  /// file it has. No-op without a file.
  void reopen();

private:
  /// The file's descriptor, closed once nobody uses it: a sync outside the lock may still hold
  /// the file that reopen() has just replaced.
  struct open_file {
    int fd;
    explicit open_file(int d) : fd(d) {}
    ~open_file();
    open_file(const open_file&) = delete;
    open_file& operator=(const open_file&) = delete;
  };

  /// Appends `text` whole or not at all; the errno of a failure, 0 on success. Needs mutex_.
  [[nodiscard]] int append(std::string_view text);
  /// Keeps `text` for the file, within max_held_bytes unless `kept` (a change's line).
  void hold(std::string text, bool kept);
  void start_outage(std::string_view what, int error);

  log_sink& log_;
  std::string file_;
  std::shared_ptr<const open_file> file_handle_; ///< under mutex_; null without a file
  std::size_t max_held_bytes_;
  std::mutex mutex_; ///< one append at a time in the file, and what follows
  bool outage_ = false;
  std::deque<std::string> held_; ///< lines not yet in the file, oldest first
  std::size_t held_bytes_ = 0;
  std::uint64_t dropped_ = 0; ///< events past max_held_bytes in this outage
  std::int64_t cut_at_ = -1;  ///< a torn line could not be cut off yet: the size to cut back to
};

} // namespace tokengate::proxy
