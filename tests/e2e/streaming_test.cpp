// Bodies stream through the real binary with bounded memory (README "The proxy").
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tokengate;

namespace {

constexpr std::uint64_t big = 256ull << 20;
constexpr long allowed_growth_kib = 64 * 1024;

// A blocking loopback connection for pushing and pulling large bodies.
class pipe_socket {
public:
  explicit pipe_socket(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~pipe_socket() { ::close(fd_); }
  void send_all(std::string_view b) {
    while (!b.empty()) {
      const auto n = ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      b.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Reads up to and including the end of the head; returns it (body bytes read along stay in
  // `extra`).
  std::string read_head(std::string& extra) {
    std::string got;
    char buf[65536];
    while (got.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      REQUIRE(n > 0);
      got.append(buf, static_cast<std::size_t>(n));
    }
    const auto end = got.find("\r\n\r\n") + 4;
    extra = got.substr(end);
    return got.substr(0, end);
  }
  std::uint64_t recv_some(char* buf, std::size_t size) {
    const auto n = ::recv(fd_, buf, size, 0);
    REQUIRE(n > 0);
    return static_cast<std::uint64_t>(n);
  }

private:
  int fd_;
};

} // namespace

TEST_CASE("256 MiB up and down pass whole while the sidecar's memory stays flat",
          "[e2e][streaming]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  test::gate_process gate(dir.path(), upstream.port());
  const auto key = gate.admin_key();
  REQUIRE(test::request(gate.port(), "GET", "/warm-up", {{"X-API-Key", key}}).status == 200);
  const auto baseline = gate.proc().peak_rss_kib();
  REQUIRE(baseline > 0);

  // Upload: Content-Length, streamed from here in 1 MiB pieces.
  {
    pipe_socket s(gate.port());
    s.send_all("POST /upload HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
               "\r\nContent-Length: " + std::to_string(big) + "\r\n\r\n");
    std::string piece(1 << 20, '\0');
    std::uint64_t hash = test::fnv1a({});
    for (std::uint64_t sent = 0; sent < big; sent += piece.size()) {
      for (std::size_t i = 0; i < piece.size(); ++i)
        piece[i] = test::pattern_byte(sent + i);
      hash = test::fnv1a(piece, hash);
      s.send_all(piece);
    }
    std::string extra;
    const auto head = s.read_head(extra);
    CHECK(head.starts_with("HTTP/1.1 200"));
    const auto seen = upstream.last();
    CHECK(seen.body_bytes == big);
    CHECK(seen.body_hash == hash);
  }

  // Download: Content-Length, read here and checked byte by byte.
  {
    pipe_socket s(gate.port());
    s.send_all("GET /download?bytes=" + std::to_string(big) +
               " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\n\r\n");
    std::string body;
    const auto head = s.read_head(body);
    REQUIRE(head.starts_with("HTTP/1.1 200"));
    CHECK(head.find("Content-Length: " + std::to_string(big)) != std::string::npos);
    std::uint64_t received = 0;
    std::uint64_t wrong = 0;
    const auto check = [&](const char* p, std::uint64_t n) {
      for (std::uint64_t i = 0; i < n; ++i)
        wrong += p[i] != test::pattern_byte(received + i);
      received += n;
    };
    check(body.data(), body.size());
    std::vector<char> buf(1 << 20);
    while (received < big)
      check(buf.data(), s.recv_some(buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(
                                                    buf.size(), big - received))));
    CHECK(received == big);
    CHECK(wrong == 0);
  }

  const auto peak = gate.proc().peak_rss_kib();
  INFO("baseline " << baseline << " KiB, peak " << peak << " KiB");
  CHECK(peak - baseline < allowed_growth_kib);
}
