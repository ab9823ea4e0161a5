#pragma once

// What a log reader sees: a pipe to hand a log_sink, and its lines taken apart.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tokengate::test {

/// A pipe whose read end never blocks.
class pipe_pair {
public:
  /// `capacity`: the pipe's size; the default leaves room for the largest test, so a writer
  /// never blocks on a full pipe.
  explicit pipe_pair(int capacity = 1 << 20) {
    REQUIRE(::pipe(fds_) == 0);
    REQUIRE(::fcntl(fds_[0], F_SETFL, O_NONBLOCK) == 0);
    ::fcntl(fds_[1], F_SETPIPE_SZ, capacity);
  }
  ~pipe_pair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;

  [[nodiscard]] int write_end() const { return fds_[1]; }

  /// Everything in the pipe now, without waiting.
  std::string available() {
    std::string out;
    char buffer[4096];
    for (;;) {
      const auto n = ::read(fds_[0], buffer, sizeof buffer);
      if (n <= 0)
        return out;
      out.append(buffer, static_cast<std::size_t>(n));
    }
  }

  /// Everything read from the pipe until what was read holds `needle` and ends a line (or 5 s
  /// have passed).
  std::string read_until(std::string_view needle) {
    std::string out = available();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    const auto done = [&] { return out.find(needle) != std::string::npos && out.ends_with('\n'); };
    while (!done() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      out += available();
    }
    return out;
  }

private:
  int fds_[2] = {-1, -1};
};

/// The lines of `text`, each of which must end in a newline.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    REQUIRE(nl != std::string::npos); // every line ends in a newline
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

/// `line` as a JSON object; fails the test when it is not one.
inline boost::json::object parse_line(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  INFO(line);
  REQUIRE_FALSE(ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

} // namespace tokengate::test
