// Log lines: valid JSON whatever the text in them, written to a file descriptor by a sink that
// drops events below its level and delivers everything on flush().
#include "proxy/log.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace tokengate::proxy;

namespace {

// A pipe whose read end never blocks.
class pipe_pair {
public:
  pipe_pair() {
    REQUIRE(::pipe(fds_) == 0);
    REQUIRE(::fcntl(fds_[0], F_SETFL, O_NONBLOCK) == 0);
    // Room for the largest test, so a writer never blocks on a full pipe.
    ::fcntl(fds_[1], F_SETPIPE_SZ, 1 << 20);
  }
  ~pipe_pair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;

  [[nodiscard]] int write_end() const { return fds_[1]; }

  // Everything in the pipe now, without waiting.
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

private:
  int fds_[2] = {-1, -1};
};

std::vector<std::string> lines_of(const std::string& text) {
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

boost::json::object parse_line(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  INFO(line);
  REQUIRE_FALSE(ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

} // namespace

TEST_CASE("a json_line escapes quotes, backslashes and control characters", "[log]") {
  const std::string nasty = std::string("say \"hi\" \\ C:\\path\n\r\t\x01\x1f\x7f end ") +
                            std::string(1, '\0') + "caf\xc3\xa9";
  json_line line;
  line.add("msg", nasty).add("path", "/a\"b");
  const auto text = std::move(line).finish();
  CHECK(text.find('\n') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find(std::string(1, '\0')) == std::string::npos);
  CHECK(text.find(R"(say \"hi\" \\ C:\\path\u000a\u000d\u0009\u0001\u001f\u007f end \u0000)") !=
        std::string::npos);
  const auto o = parse_line(text);
  CHECK(o.at("msg").as_string() == nasty);
  CHECK(o.at("path").as_string() == "/a\"b");
}

TEST_CASE("a json_line starts with the time and keeps the fields in order", "[log]") {
  json_line line;
  line.add("method", "GET")
      .add("status", 404)
      .add("bytes", std::uint64_t{18446744073709551615ULL})
      .add("delta", std::int64_t{-3})
      .add_ms("upstream_ms", 12.3456);
  const auto text = std::move(line).finish();
  CHECK(text.starts_with(R"({"time":")"));
  const auto o = parse_line(text);
  const std::string_view time = o.at("time").as_string();
  CHECK(time.size() == 24); // 2026-11-28T02:41:26.123Z
  CHECK(time.ends_with("Z"));
  CHECK(time[10] == 'T');
  CHECK(o.at("status").to_number<std::int64_t>() == 404);
  CHECK(o.at("bytes").as_uint64() == 18446744073709551615ULL);
  CHECK(o.at("delta").as_int64() == -3);
  CHECK(o.at("upstream_ms").to_number<double>() == Approx(12.346));
  CHECK(text.find(R"("method":"GET","status":404,"bytes":)") != std::string::npos);

  std::string escaped;
  append_json_escaped(escaped, "a\"b");
  CHECK(escaped == R"(a\"b)");
  CHECK(level_name(log_level::warn) == "warn");
}

TEST_CASE("a log_sink delivers queued lines on flush", "[log]") {
  pipe_pair p;
  log_sink sink(p.write_end(), log_level::info);
  sink.write(R"({"n":1})");
  sink.write(R"({"n":2})");
  sink.flush();
  CHECK(p.available() == "{\"n\":1}\n{\"n\":2}\n");
  sink.flush(); // nothing new: nothing written
  CHECK(p.available().empty());
}

TEST_CASE("every line written before flush() returns is in the pipe, in order", "[log]") {
  // The background writer wakes within 100 ms of a line; a second of write-then-flush crosses
  // it often.
  pipe_pair p;
  log_sink sink(p.write_end(), log_level::info);
  std::string received;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
  std::size_t n = 0;
  for (; std::chrono::steady_clock::now() < until; ++n) {
    const auto line = "line " + std::to_string(n);
    sink.write(line);
    sink.flush();
    received += p.available();
    REQUIRE(received.ends_with(line + "\n"));
  }
  const auto lines = lines_of(received);
  REQUIRE(lines.size() == n);
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(lines[i] == "line " + std::to_string(i));
}

TEST_CASE("lines are written in the background without flush", "[log]") {
  pipe_pair p;
  log_sink sink(p.write_end(), log_level::info);
  const auto arrived = [&p] {
    std::string got;
    for (int i = 0; i < 300 && got.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      got = p.available();
    }
    return got;
  };
  sink.write("late");
  CHECK(arrived() == "late\n");
  // The writer sleeps once nothing is queued; the next line wakes it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  sink.write("later");
  CHECK(arrived() == "later\n");
}

TEST_CASE("destroying a log_sink writes what is queued", "[log]") {
  pipe_pair p;
  {
    log_sink sink(p.write_end(), log_level::info);
    sink.write("last words");
  }
  CHECK(p.available() == "last words\n");
}

TEST_CASE("events below the sink's level are dropped", "[log]") {
  pipe_pair p;
  log_sink sink(p.write_end(), log_level::warn);
  CHECK_FALSE(sink.enabled(log_level::debug));
  CHECK_FALSE(sink.enabled(log_level::info));
  CHECK(sink.enabled(log_level::warn));
  CHECK(sink.enabled(log_level::error));

  bool called = false;
  sink.event(log_level::info, "quiet", [&](json_line&) { called = true; });
  sink.event(log_level::debug, "quieter");
  CHECK_FALSE(called); // dropped before any work is done
  sink.flush();
  CHECK(p.available().empty());

  // warn and above are written at once, no flush needed.
  sink.event(log_level::warn, "loud", [](json_line& l) { l.add("status", 503); });
  const auto lines = lines_of(p.available());
  REQUIRE(lines.size() == 1);
  const auto o = parse_line(lines[0]);
  CHECK(o.at("level").as_string() == "warn");
  CHECK(o.at("msg").as_string() == "loud");
  CHECK(o.at("status").to_number<int>() == 503);
  CHECK(o.contains("time"));

  sink.event(log_level::error, "worse");
  CHECK(lines_of(p.available()).size() == 1);
}

TEST_CASE("lines from many threads arrive whole", "[log]") {
  pipe_pair p;
  {
    log_sink sink(p.write_end(), log_level::debug);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&sink, t] {
        for (int i = 0; i < 100; ++i) {
          sink.event(log_level::info, "request",
                     [&](json_line& l) { l.add("thread", t).add("i", i); });
          if (i % 10 == 0)
            sink.flush();
        }
      });
    for (auto& th : threads)
      th.join();
  }
  const auto lines = lines_of(p.available());
  REQUIRE(lines.size() == 400);
  std::vector<int> next(4, 0);
  for (const auto& line : lines) {
    const auto o = parse_line(line);
    const auto t = o.at("thread").to_number<int>();
    // Each thread's lines keep their order.
    CHECK(o.at("i").to_number<int>() == next[static_cast<std::size_t>(t)]++);
  }
}
