#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tokengate::test {

/// A child process (the real tokengate binary, in end-to-end tests) with its stdout and stderr
/// in files. Killed with SIGKILL on destruction if still running.
class process {
public:
  /// Starts `args[0]` with `args`, the current environment plus `env`, in `dir`.
  process(const std::vector<std::string>& args, const std::filesystem::path& dir,
          const std::vector<std::pair<std::string, std::string>>& env = {});
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int sig) const;
  /// The exit status (or 128 + signal), once the process has ended within `timeout`.
  [[nodiscard]] std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] std::string out() const;
  [[nodiscard]] std::string err() const;
  /// Waits until stdout holds `text`; false when the process ends or `timeout` passes first.
  [[nodiscard]] bool wait_for_output(std::string_view text,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Resident memory now and at its peak, in KiB, from /proc.
  [[nodiscard]] long rss_kib() const;
  [[nodiscard]] long peak_rss_kib() const;

private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path out_;
  std::filesystem::path err_;
};

/// The path of the tokengate binary under test.
[[nodiscard]] std::string tokengate_binary();

} // namespace tokengate::test
