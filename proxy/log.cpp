#include "proxy/log.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <utility>

namespace tokengate::proxy {
namespace {

constexpr std::size_t flush_threshold = 64 * 1024;

} // namespace

std::string_view level_name(log_level l) noexcept {
  switch (l) {
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warn:
    return "warn";
  case log_level::error:
    return "error";
  }
  return "info";
}

namespace {

// "2026-11-28T02:41:26.123Z", with the seconds part cached per thread.
void append_now(std::string& out) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = floor<seconds>(now);
  thread_local seconds::rep cached_second = -1;
  thread_local char cached[24];
  if (secs.time_since_epoch().count() != cached_second) {
    cached_second = secs.time_since_epoch().count();
    const std::time_t t = cached_second;
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
  }
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ",
                static_cast<int>(duration_cast<milliseconds>(now - secs).count()));
  out.append(cached);
  out.append(millis);
}

} // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  constexpr std::string_view hex = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      out.append("\\u00");
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
}

json_line::json_line() {
  text_.reserve(256);
  text_.append(R"({"time":")");
  append_now(text_);
  text_.push_back('"');
}

void json_line::key(std::string_view k) {
  text_.append(",\"");
  text_.append(k);
  text_.append("\":");
}

json_line& json_line::add(std::string_view k, std::string_view value) {
  key(k);
  text_.push_back('"');
  append_json_escaped(text_, value);
  text_.push_back('"');
  return *this;
}

json_line& json_line::add(std::string_view k, std::int64_t value) {
  key(k);
  text_.append(std::to_string(value));
  return *this;
}

json_line& json_line::add(std::string_view k, std::uint64_t value) {
  key(k);
  text_.append(std::to_string(value));
  return *this;
}

json_line& json_line::add_bool(std::string_view k, bool value) {
  key(k);
  text_.append(value ? "true" : "false");
  return *this;
}

json_line& json_line::add(std::string_view k, const std::vector<std::string>& values) {
  key(k);
  text_.push_back('[');
  for (std::size_t i = 0; i < values.size(); ++i) {
    text_.append(i == 0 ? "\"" : ",\"");
    append_json_escaped(text_, values[i]);
    text_.push_back('"');
  }
  text_.push_back(']');
  return *this;
}

json_line& json_line::add_ms(std::string_view k, double milliseconds) {
  key(k);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", milliseconds);
  text_.append(buffer);
  return *this;
}

std::string json_line::finish() && {
  text_.push_back('}');
  return std::move(text_);
}

log_sink::log_sink(int fd, log_level level, std::size_t max_pending)
    : fd_(fd), level_(level), max_pending_(max_pending) {
  struct stat st {};
  may_stall_ = ::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode);
  writer_ = std::thread([this] { run(); });
}

log_sink::~log_sink() {
  // The process is ending: a reader that takes nothing for a while (a stalled pipe) does not
  // keep it from exiting; what it has not taken by then is lost.
  give_up_at_.store(std::chrono::steady_clock::now() + exit_patience, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  flush();
}

void log_sink::flush_soon() {
  {
    std::lock_guard lock(mutex_);
    urgent_ = true;
  }
  wake_.notify_one();
}

void log_sink::write(std::string_view line, bool urgent, bool kept) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (!kept && pending_.size() + line.size() + 1 > max_pending_) {
      // The descriptor has not taken what waits (a stalled reader): drop the line rather than
      // grow without bound; the count is logged once the writer gets through.
      ++unreported_drops_;
      dropped_total_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // The first line of a batch wakes the writer (which sleeps while nothing is queued), and
    // so does an urgent line or a batch that has grown large.
    wake = pending_.empty() || urgent;
    urgent_ = urgent_ || urgent;
    pending_.append(line);
    pending_.push_back('\n');
    wake = wake || pending_.size() >= flush_threshold;
  }
  if (wake)
    wake_.notify_one();
}

void log_sink::flush() {
  // Holding the write lock while taking the queue keeps lines in order and makes flush() return
  // only once everything queued before it is written.
  std::lock_guard writing(write_mutex_);
  std::string bytes;
  std::uint64_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    bytes.swap(pending_);
    std::swap(dropped, unreported_drops_);
    urgent_ = false;
  }
  // Every line dropped came after those taken here: the report follows them.
  if (dropped != 0 && enabled(log_level::warn)) {
    json_line line;
    line.add("level", level_name(log_level::warn))
        .add("msg", "log lines dropped")
        .add("dropped", dropped);
    bytes.append(std::move(line).finish());
    bytes.push_back('\n');
  }
  write_out(bytes);
}

void log_sink::write_out(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    std::size_t step = bytes.size() - done;
    if (may_stall_) {
      // A pipe, a socket or a terminal: wait for room a while at a time, so that the wait can
      // end at exit, and write no more than room is promised for (PIPE_BUF).
      if (std::chrono::steady_clock::now() >= give_up_at_.load(std::memory_order_relaxed))
        return;
      pollfd room{fd_, POLLOUT, 0};
      const int ready = ::poll(&room, 1, 100);
      if (ready == 0 || (ready < 0 && errno == EINTR))
        continue;
      step = std::min<std::size_t>(step, PIPE_BUF);
    }
    const auto n = ::write(fd_, bytes.data() + done, step);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; // stdout is gone: nothing better to do with a log line
    done += static_cast<std::size_t>(n);
  }
}

void log_sink::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // Nothing queued: sleep until a line is, so that an idle sidecar does not wake. Then
    // gather lines for up to 100 ms (less if they pile up or one is urgent) and write them in
    // one go.
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    wake_.wait_for(lock, std::chrono::milliseconds(100),
                   [this] { return stopping_ || urgent_ || pending_.size() >= flush_threshold; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

} // namespace tokengate::proxy
