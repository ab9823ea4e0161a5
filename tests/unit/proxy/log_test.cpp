// Log lines: valid JSON whatever the text in them, written to a file descriptor by a sink that
// drops events below its level, delivers everything on flush(), and never makes a caller wait
// for a reader that does not read.
#include "proxy/log.hpp"
#include "tests/unit/proxy/log_checks.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace tokengate::proxy;
using namespace tokengate::test;

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

  // warn and above wake the writer at once, no flush needed: well within the 100 ms it
  // gathers other lines for (the quickest of three, against a busy machine).
  auto quickest = std::chrono::steady_clock::duration::max();
  for (int i = 0; i < 3; ++i) {
    const auto logged = std::chrono::steady_clock::now();
    sink.event(log_level::warn, "soon");
    CHECK(lines_of(p.read_until("\n")).size() == 1);
    quickest = std::min(quickest, std::chrono::steady_clock::now() - logged);
  }
  CHECK(quickest < std::chrono::milliseconds(50));
  sink.event(log_level::warn, "loud", [](json_line& l) { l.add("status", 503); });
  const auto lines = lines_of(p.read_until("\n"));
  REQUIRE(lines.size() == 1);
  const auto o = parse_line(lines[0]);
  CHECK(o.at("level").as_string() == "warn");
  CHECK(o.at("msg").as_string() == "loud");
  CHECK(o.at("status").to_number<int>() == 503);
  CHECK(o.contains("time"));

  sink.event(log_level::error, "worse");
  CHECK(lines_of(p.read_until("\n")).size() == 1);
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

TEST_CASE("a stalled reader makes no caller wait, past the bound whole lines are dropped, counted "
          "and reported once the reader reads again",
          "[log]") {
  pipe_pair p(4096); // nobody reads until the end: it fills at once
  constexpr std::size_t bound = 64 * 1024;
  const std::string padding(100, 'x');
  constexpr int sent = 5000; // about 600 KiB: far past the pipe and the bound
  std::atomic<bool> returned = false;
  {
    log_sink sink(p.write_end(), log_level::info, bound);
    std::thread caller([&] {
      for (int i = 0; i < sent; ++i)
        sink.event(i % 2 == 0 ? log_level::info : log_level::warn, "request",
                   [&](json_line& l) { l.add("i", i).add("pad", padding); });
      returned = true;
    });
    // A caller that waited for the pipe would still be waiting: nobody reads meanwhile (10 s:
    // a loaded machine may be slow to send them all).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!returned && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(returned);
    const auto dropped = sink.dropped_lines();
    CHECK(dropped > 0);

    // The reader reads again: what waited arrives, then the count (in two lines, should the
    // writer have taken a batch while lines were still being dropped).
    auto text = p.read_until("log lines dropped");
    caller.join();
    const auto told = [&] {
      std::uint64_t n = 0;
      const auto whole = text.substr(0, text.rfind('\n') + 1);
      for (const auto& line : lines_of(whole))
        if (parse_line(line).at("msg").as_string() == "log lines dropped")
          n += parse_line(line).at("dropped").to_number<std::uint64_t>();
      return n;
    };
    for (int i = 0; i < 500 && (told() < dropped || text.back() != '\n'); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      text += p.available();
    }
    std::uint64_t received = 0;
    std::uint64_t reported = 0;
    int last = -1;
    for (const auto& line : lines_of(text)) {
      const auto o = parse_line(line); // whole lines only
      if (o.at("msg").as_string() == "log lines dropped") {
        CHECK(o.at("level").as_string() == "warn");
        reported += o.at("dropped").to_number<std::uint64_t>();
        continue;
      }
      const auto i = o.at("i").to_number<int>();
      CHECK(i > last); // in order, with gaps where lines were dropped
      last = i;
      ++received;
    }
    CHECK(reported == dropped);
    CHECK(received + dropped == std::uint64_t{sent});
    CHECK(sink.dropped_lines() == dropped); // nothing dropped once the reader reads
  }
}

TEST_CASE("a kept line (a change's audit line) is queued past the bound while the reader stalls",
          "[log]") {
  pipe_pair p(4096); // nobody reads until the end
  const std::string padding(100, 'x');
  {
    log_sink sink(p.write_end(), log_level::info, 8 * 1024);
    // Far past the pipe and the bound: the later of these are dropped.
    for (int i = 0; i < 500; ++i)
      sink.write(R"({"refused":)" + std::to_string(i) + R"(,"pad":")" + padding + R"("})");
    REQUIRE(sink.dropped_lines() > 0);
    const auto dropped = sink.dropped_lines();
    for (int i = 0; i < 20; ++i)
      sink.write(R"({"change":)" + std::to_string(i) + "}", false, true);
    CHECK(sink.dropped_lines() == dropped); // none of the kept ones
    const auto text = p.read_until(R"({"change":19})");
    for (int i = 0; i < 20; ++i)
      CHECK(text.find(R"({"change":)" + std::to_string(i) + "}\n") != std::string::npos);
  }
}
