#pragma once

#include "proxy/log_level.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tokengate::proxy {

/// Builds one JSON log line: {"time": ..., then the fields added, in order}.
class json_line {
public:
  json_line();
  json_line& add(std::string_view key, std::string_view value);
  json_line& add(std::string_view key, std::int64_t value);
  json_line& add(std::string_view key, std::uint64_t value);
  json_line& add(std::string_view key, unsigned value) { return add(key, std::uint64_t{value}); }
  json_line& add(std::string_view key, int value) { return add(key, std::int64_t{value}); }
  /// An array of strings.
  json_line& add(std::string_view key, const std::vector<std::string>& values);
  json_line& add_bool(std::string_view key, bool value);
  json_line& add_ms(std::string_view key, double milliseconds);
  [[nodiscard]] std::string finish() &&;

private:
  void key(std::string_view k);
  std::string text_;
};

[[nodiscard]] std::string_view level_name(log_level l) noexcept;

/// Appends `s` to `out` as the inside of a JSON string (quotes not included).
void append_json_escaped(std::string& out, std::string_view s);

/// Log lines to a file descriptor (stdout), buffered and written by a background thread at
/// least every 100 ms, and on flush() and destruction. Only that thread and flush() write to the
/// descriptor: queuing a line never waits for it. While the descriptor does not take the lines
/// (a stalled reader), at most `max_pending` bytes wait; past that whole lines are dropped,
/// counted, and reported in one warn line once the writer gets through again. Thread-safe.
/// Lines must never hold a key.
class log_sink {
public:
  static constexpr std::size_t default_max_pending = 4 * 1024 * 1024;

  log_sink(int fd, log_level level, std::size_t max_pending = default_max_pending);
  ~log_sink();
  log_sink(const log_sink&) = delete;
  log_sink& operator=(const log_sink&) = delete;

  [[nodiscard]] bool enabled(log_level level) const noexcept {
    return level >= level_.load(std::memory_order_relaxed);
  }
  /// Changes the level of the lines written from now on (a live reload).
  void set_level(log_level level) noexcept { level_.store(level, std::memory_order_relaxed); }
  /// Queues `line` (a newline is added); `urgent`: wakes the writer now rather than within
  /// 100 ms. Never waits for the descriptor. A line that is `kept` is queued past the bound
  /// (the audit line of a change: few, and made by an authenticated caller).
  void write(std::string_view line, bool urgent = false, bool kept = false);
  /// An event line {"time", "level", "msg", ...}: `add_fields(json_line&)` adds the rest. Lines
  /// of warn and above are handed to the writer at once.
  template <class F> void event(log_level level, std::string_view message, F&& add_fields) {
    if (!enabled(level))
      return;
    json_line line;
    line.add("level", level_name(level)).add("msg", message);
    add_fields(line);
    write(std::move(line).finish(), level >= log_level::warn);
  }
  void event(log_level level, std::string_view message) {
    event(level, message, [](json_line&) {});
  }
  /// Writes everything queued, now; waits for the descriptor (not for threads serving traffic).
  void flush();
  /// Has the writer write what is queued now rather than within 100 ms, without waiting for it.
  void flush_soon();
  /// Lines dropped so far because too much was waiting (tokengate_log_lines_dropped_total).
  [[nodiscard]] std::uint64_t dropped_lines() const noexcept {
    return dropped_total_.load(std::memory_order_relaxed);
  }

private:
  void run();
  void write_out(const std::string& bytes);

  int fd_;
  std::atomic<log_level> level_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;
  std::size_t max_pending_;
  std::uint64_t unreported_drops_ = 0; ///< dropped since the last batch was taken
  std::atomic<std::uint64_t> dropped_total_{0};
  bool urgent_ = false;
  bool stopping_ = false;
  bool may_stall_ = true; ///< the descriptor is not a regular file: its reader may stall
  /// How long the exit waits for a stalled reader.
  static constexpr std::chrono::seconds exit_patience{2};
  std::atomic<std::chrono::steady_clock::time_point> give_up_at_{
      std::chrono::steady_clock::time_point::max()};
  std::mutex write_mutex_; // keeps flush() and the background thread from interleaving
  std::thread writer_;
};

} // namespace tokengate::proxy
