// A log reader that stops reading (README "Logs"): the real binary's stdout is a pipe nobody
// reads. Requests, refused token API calls (each an audit line) included, are still answered;
// past the bound, lines are dropped and counted, and the count is logged once the reader reads.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

using namespace tokengate;

namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
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
  const auto port = free_port();
  const auto admin_port = free_port();
  test::process gate({"/bin/sh", "-c", R"(exec "$0" "$@" > stdout)", test::tokengate_binary(),
                      "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--admin-listen",
                      "127.0.0.1:" + std::to_string(admin_port), "--upstream",
                      "http://127.0.0.1:" + std::to_string(upstream.port()), "--data-dir", "data",
                      "--audit-log-file", "audit.log"},
                     dir.path());
  const auto key_file = dir / "data" / "admin-token";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(key_file) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  bool up = false;
  while (!up && std::chrono::steady_clock::now() < until) {
    try {
      up = test::request(admin_port, "GET", "/healthz").status == 200;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(up);

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

  // The reader reads again: what waited, then one line with the count. It keeps reading
  // through the shutdown, which writes what is queued.
  std::string text;
  const auto drain = [&] {
    char buffer[65536];
    for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;)
      text.append(buffer, static_cast<std::size_t>(n));
  };
  const std::string report = R"("msg":"log lines dropped","dropped":)";
  const auto read_until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (text.find(report) == std::string::npos && std::chrono::steady_clock::now() < read_until) {
    drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto at = text.find(report);
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(text.substr(at + report.size())) >= dropped);
  gate.signal(SIGTERM);
  std::optional<int> status;
  for (int i = 0; i < 200 && !status; ++i) {
    drain();
    status = gate.wait(std::chrono::milliseconds(100));
  }
  CHECK(status == 0);
  ::close(reader);
}
