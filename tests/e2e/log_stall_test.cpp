// A log reader that stops reading (README "Logs"): the real binary's stdout is a pipe nobody
// reads. Requests, refused token API calls (each an audit line) included, are still answered;
// past the bound, lines are dropped and counted, and the count is logged once the reader reads.
// A stop with the reader stalled still ends.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

using namespace tokengate;

namespace {

/// The port after `marker` ("\"listen\":\"127.0.0.1:") in `text`.
std::uint16_t port_after(const std::string& text, std::string_view marker) {
  const auto at = text.find(marker);
  REQUIRE(at != std::string::npos);
  return static_cast<std::uint16_t>(std::stoul(text.substr(at + marker.size())));
}

// tokengate_log_lines_dropped_total as /metrics shows it.
double dropped_lines(std::uint16_t admin_port) {
  const auto text = test::request(admin_port, "GET", "/metrics").body;
  const std::string name = "\ntokengate_log_lines_dropped_total ";
  const auto at = text.find(name);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + name.size()));
}

} // namespace

TEST_CASE("a stalled log reader stalls no request, and the lines dropped are counted and reported",
          "[e2e][log]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  // stdout: a FIFO whose reader (this test) does not read until the end.
  const auto fifo = dir / "stdout";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  test::process gate({"/bin/sh", "-c", R"(exec "$0" "$@" > stdout)", test::tokengate_binary(),
                      "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                      "--upstream", "http://127.0.0.1:" + std::to_string(upstream.port()),
                      "--data-dir", "data", "--audit-log-file", "audit.log"},
                     dir.path());
  const auto key_file = dir / "data" / "admin-token";
  std::string text;
  const auto drain = [&] {
    char buffer[65536];
    for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;)
      text.append(buffer, static_cast<std::size_t>(n));
  };
  // The ports, from the "listening" line (read while the pipe is still far from full).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const auto listening_line = [&] {
    const auto at = text.find("\"msg\":\"listening\"");
    return at != std::string::npos && text.find('\n', at) != std::string::npos;
  };
  while (!listening_line() && std::chrono::steady_clock::now() < until) {
    drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(listening_line());
  const auto port = port_after(text, "\"listen\":\"127.0.0.1:");
  const auto admin_port = port_after(text, "\"admin_listen\":\"127.0.0.1:");
  text.clear();

  // Keyless token API calls: each is refused (401) and logged twice (access and audit line),
  // far past the pipe's 64 KiB and the 4 MiB the sidecar keeps waiting. Each is answered within
  // 5 s on one keep-alive connection (its body, {"message":"..."}, ends the answer).
  test::raw_connection client(port);
  int sent = 0;
  for (; sent < 40000 && (sent % 2000 != 0 || dropped_lines(admin_port) == 0); ++sent) {
    REQUIRE(client.send("GET /api-tokens HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto answer = client.read_until("\"}", std::chrono::seconds(5));
    INFO("request " << sent);
    REQUIRE(test::status_of(answer) == 401);
    REQUIRE(answer.ends_with("\"}"));
  }
  const auto dropped = dropped_lines(admin_port);
  CHECK(dropped > 0);
  CHECK(test::request(admin_port, "GET", "/healthz").status == 200);
  std::string key;
  std::getline(std::ifstream(key_file), key);
  CHECK(test::call(port, "GET", "/api-tokens/self", key).status == 200);

  // The reader reads again: what waited, then one line with the count.
  const std::string report = R"("msg":"log lines dropped","dropped":)";
  const auto read_until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (text.find(report) == std::string::npos && std::chrono::steady_clock::now() < read_until) {
    drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto at = text.find(report);
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(text.substr(at + report.size())) >= dropped);

  // The reader stalls again, the pipe full: a stop still ends, and soon (the exit waits for it
  // 2 s), with status 0.
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(client.send("GET /api-tokens HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(test::status_of(client.read_until("\"}", std::chrono::seconds(5))) == 401);
  }
  gate.signal(SIGTERM);
  const auto status = gate.wait(std::chrono::seconds(8)); // the stop, and about 2 s for stdout
  CHECK(status == 0);
  ::close(reader);
}
