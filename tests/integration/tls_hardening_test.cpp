// TLS failure paths (README "TLS"): what the client and the log are told when the upstream's
// handshake fails, an encrypted key, what a TLS client gets when tokengate refuses it early,
// and the handshake deadline.
#include "tests/integration/tls_fixture.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

using namespace tokengate;
using test::tls_fixture;
namespace fs = std::filesystem;

namespace {

/// Writes `key` again at `to`, encrypted with AES-128 and a password.
void encrypt_key(const fs::path& key, const fs::path& to) {
  FILE* in = std::fopen(key.c_str(), "r");
  REQUIRE(in != nullptr);
  EVP_PKEY* pkey = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  REQUIRE(pkey != nullptr);
  FILE* out = std::fopen(to.c_str(), "w");
  REQUIRE(out != nullptr);
  static char password[] = "secret";
  CHECK(PEM_write_PrivateKey(out, pkey, EVP_aes_128_cbc(), nullptr, 0, nullptr, password) == 1);
  std::fclose(out);
  EVP_PKEY_free(pkey);
}

/// How many of `connections` the server has closed, waiting at most `wait` on each still open.
std::size_t count_closed(std::vector<std::unique_ptr<test::raw_connection>>& connections,
                         std::vector<bool>& closed, std::chrono::milliseconds wait) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < connections.size(); ++i) {
    closed[i] = closed[i] || connections[i]->closed_within(wait);
    n += closed[i] ? 1 : 0;
  }
  return n;
}

/// `n` clients on `port` that start a handshake record (its first bytes, no more) and go silent.
std::vector<std::unique_ptr<test::raw_connection>> half_open_handshakes(std::uint16_t port, int n) {
  std::vector<std::unique_ptr<test::raw_connection>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<test::raw_connection>(port));
    REQUIRE(clients.back()->send("\x16\x03\x01"));
  }
  return clients;
}

/// One event loop, so that the oldest handshake under way on it is the oldest of all, a budget
/// of two handshakes, and a head timeout the tests never reach.
void one_loop_two_handshakes(proxy::config& c) {
  c.threads = 1;
  c.limits.max_tls_handshakes = 2;
  c.limits.header_timeout = std::chrono::minutes(1);
}

} // namespace

TEST_CASE("a failed upstream TLS handshake is a 502 with a fixed message, the detail is logged",
          "[tls][upstream]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "upstream-ca");
  test::test_upstream plain; // speaks HTTP where TLS is expected
  test::sidecar gate(plain.port(), test::https_upstream(ca.cert_file()));
  auto r = test::request(gate.port(), "GET", "/public/x");
  CHECK(r.status == 502);
  CHECK(r.message() == "upstream TLS handshake failed");
  CHECK_THAT(gate.log_text(),
             Catch::Contains(R"("level":"warn","msg":"upstream TLS handshake failed")"));
}

TEST_CASE("an encrypted private key is refused at start with a clear error, without a prompt",
          "[tls]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  const auto pair = ca.issue(d.path(), "server");
  encrypt_key(pair.key, d / "encrypted.key");
  test::test_upstream upstream;
  CHECK_THROWS_WITH(test::sidecar(upstream.port(), test::serving({pair.cert, d / "encrypted.key"})),
                    Catch::Contains("the key file is encrypted"));
}

TEST_CASE("at max_connections a TLS listener closes a new connection without a plain answer",
          "[tls][limits]") {
  tls_fixture f([](proxy::limits& l) { l.max_connections = 2; });
  std::vector<std::unique_ptr<test::tls_client>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<test::tls_client>(f.gate.port(), f.trusting()));
    REQUIRE(held.back()->request("GET", "/public/x").status == 200);
  }
  test::raw_connection extra(f.gate.port());
  CHECK(extra.read_until_close() == "");
  CHECK_FALSE(test::handshake_error(f.gate.port(), f.trusting()).empty());
}

TEST_CASE("a TLS request refused before its large body is read: the client reads the answer",
          "[tls][limits]") {
  tls_fixture f;
  test::tls_client c(f.gate.port(), f.trusting());
  // 401 without a key; the body (4 MiB announced, 512 KiB sent) is never read.
  c.send("POST /alerts/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n" +
         std::string(512 * 1024, 'x'));
  // Give the server time to answer and close before reading: a reset would drop the answer.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto r = c.read_response();
  CHECK(r.status == 401);
  CHECK_FALSE(r.message().empty());
  CHECK(f.upstream.requests().empty());
}

TEST_CASE("handshakes beyond max_tls_handshakes are closed, a stalled one gives its place up "
          "after a second, a finished one frees its place",
          "[tls][limits]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  const auto pair = ca.issue(d.path(), "server");
  auto c = test::serving(pair);
  one_loop_two_handshakes(c);
  test::test_upstream upstream;
  test::sidecar gate(upstream.port(), c);
  const auto trusting = test::trusting(ca.cert_file());
  // Five clients start a handshake record and go silent. However the server's turns fall, two
  // stay under way: each new one is closed, or takes the place of one a second old.
  auto half_open = half_open_handshakes(gate.port(), 5);
  std::vector<bool> closed(half_open.size(), false);
  CHECK(test::eventually(
      [&] { return count_closed(half_open, closed, std::chrono::milliseconds(10)) >= 3; }));
  CHECK(count_closed(half_open, closed, std::chrono::milliseconds(200)) == 3);
  // Once the two have been under way for a second (handshake_give_up_after), a client's whole
  // handshake takes the place of the older one: stalled handshakes cannot keep clients out.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(test::handshake_error(gate.port(), trusting).empty());
  CHECK(test::eventually(
      [&] { return count_closed(half_open, closed, std::chrono::milliseconds(10)) == 4; }));
  // Once they go, a handshake gets through at once.
  half_open.clear();
  CHECK(test::eventually([&] { return test::handshake_error(gate.port(), trusting).empty(); }));
}

TEST_CASE("with two event loops a stalled handshake still gives its place up at "
          "max_tls_handshakes on a loop that holds more connections",
          "[tls][limits][loops]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  const auto pair = ca.issue(d.path(), "server");
  auto c = test::serving(pair);
  c.threads = 2;
  c.limits.max_tls_handshakes = 1;
  c.limits.header_timeout = std::chrono::minutes(1);
  test::test_upstream upstream;
  test::sidecar gate(upstream.port(), c);
  const auto trusting = test::trusting(ca.cert_file());
  // One client starts a handshake and goes silent: its loop holds one connection, the other
  // none, so a new connection would go to the other loop (README "Event loops"), where no
  // handshake can give its place up.
  auto half_open = half_open_handshakes(gate.port(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  // README "TLS": half-open handshakes cannot keep clients out until header_timeout_ms.
  CHECK(test::eventually([&] { return test::handshake_error(gate.port(), trusting).empty(); }));
  CHECK(half_open.front()->closed_within(std::chrono::seconds(5)));
}

TEST_CASE("half-open handshakes on the main listener do not keep a probe out of the admin "
          "listener's TLS",
          "[tls][limits][admin]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  const auto pair = ca.issue(d.path(), "server");
  auto c = test::example_routes();
  c.tls.cert_file = c.admin_tls.cert_file = pair.cert;
  c.tls.key_file = c.admin_tls.key_file = pair.key;
  one_loop_two_handshakes(c);
  test::test_upstream upstream;
  test::sidecar gate(upstream.port(), c);
  const auto trusting = test::trusting(ca.cert_file());
  // Anyone who can reach the main port starts three handshakes and goes silent. Once one of
  // them is closed (the third refused, or the first given up for it after a second), the main
  // listener's budget is spent, as it is meant to be.
  auto half_open = half_open_handshakes(gate.port(), 3);
  std::vector<bool> closed(half_open.size(), false);
  REQUIRE(test::eventually(
      [&] { return count_closed(half_open, closed, std::chrono::milliseconds(10)) == 1; }));
  // The admin listener (at most 64 connections, the idlest closed to make room) stays open to a
  // probe: README "Admin endpoints", "idle connections cannot keep a probe out".
  REQUIRE(test::handshake_error(gate.admin_port(), trusting).empty());
  test::tls_client admin(gate.admin_port(), trusting);
  CHECK(admin.request("GET", "/healthz").status == 200);
}

TEST_CASE("a TLS client that starts a handshake and goes silent is closed after "
          "header_timeout_ms",
          "[tls][limits]") {
  tls_fixture f([](proxy::limits& l) { l.header_timeout = std::chrono::milliseconds(300); });
  test::raw_connection silent(f.gate.port());
  REQUIRE(silent.send("\x16\x03\x01")); // a handshake record's first bytes, and no more
  CHECK(silent.closed_within(std::chrono::seconds(10)));
  // The server is not stuck: a whole handshake still gets through.
  CHECK(test::handshake_error(f.gate.port(), f.trusting()).empty());
}

TEST_CASE("a TLS client that stalls its handshake gets no second header_timeout_ms for its first "
          "request: the clock runs from the connection's start",
          "[tls][limits]") {
  // README "Configuration", header_timeout_ms: a request head not complete this long after the
  // connection opened closes the connection; the handshake takes its share of that time.
  tls_fixture f([](proxy::limits& l) { l.header_timeout = std::chrono::milliseconds(3000); });
  const int late = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(late >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(f.gate.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(late, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()),
                                                                  SSL_CTX_free);
  const std::unique_ptr<SSL, decltype(&SSL_free)> tls(context ? SSL_new(context.get()) : nullptr,
                                                      SSL_free);
  const bool handshake = tls && SSL_set_fd(tls.get(), late) == 1 && SSL_connect(tls.get()) == 1;
  // No request: closed 3 s after the connection opened, not 3 s after the handshake.
  const bool closed = handshake && test::peer_closed_within(late, std::chrono::milliseconds(2000));
  ::close(late);
  REQUIRE(handshake); // about 2 s after the connection opened
  CHECK(closed);
}

TEST_CASE("a client that connects to the TLS port and sends nothing is closed after "
          "header_timeout_ms, one that sends plain HTTP later is answered 400",
          "[tls][limits]") {
  tls_fixture f([](proxy::limits& l) { l.header_timeout = std::chrono::milliseconds(300); });
  test::raw_connection silent(f.gate.port());
  CHECK(silent.closed_within(std::chrono::seconds(10)));
  // A first byte that comes after the server began waiting for it is looked at as one that
  // came with the connection.
  test::raw_connection late(f.gate.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(late.send("GET /public/x HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto answer = late.read_until_close();
  CHECK(answer.starts_with("HTTP/1.1 400 "));
  CHECK(answer.find(R"({"message":"this port expects TLS: use https://"})") != std::string::npos);
  // A client that closes before its first byte leaves the server as it was.
  { test::raw_connection closes_at_once(f.gate.port()); }
  CHECK(test::handshake_error(f.gate.port(), f.trusting()).empty());
  CHECK(f.upstream.requests().empty());
}

namespace {

// A keep-alive TLS connection that has made one request, to a sidecar whose heads have 500 ms
// (header_timeout_ms) and whose idle connections 30 s (idle_timeout_ms).
struct idle_tls_connection {
  tls_fixture f{[](proxy::limits& l) {
    l.header_timeout = std::chrono::milliseconds(500);
    l.idle_timeout = std::chrono::seconds(30);
  }};
  test::tls_client c{f.gate.port(), f.trusting()};
  idle_tls_connection() { REQUIRE(c.request("GET", "/public/x").status == 200); }
};

} // namespace

TEST_CASE_METHOD(idle_tls_connection,
                 "on a TLS keep-alive connection, a next request whose record comes a byte at a "
                 "time has header_timeout_ms from its first byte, not idle_timeout_ms",
                 "[tls][limits]") {
  std::this_thread::sleep_for(std::chrono::milliseconds(700)); // idle, within idle_timeout_ms
  // An application data record's header, announcing 100 bytes that never come.
  c.send_raw(std::string("\x17\x03\x03\x00\x64", 5));
  // header_timeout_ms, then at most the 2 s the close waits for the client's close_notify.
  CHECK(c.closed_within(std::chrono::seconds(6)));
}

TEST_CASE_METHOD(idle_tls_connection,
                 "on a TLS keep-alive connection, records of empty lines do not hold it open past "
                 "header_timeout_ms",
                 "[tls][limits]") {
  // An empty line (which may precede a request) in a record of its own, every 200 ms: the first
  // starts the head's clock, the others do not start it again. Once the server has closed, a
  // send fails.
  bool refused = false;
  for (int i = 0; i < 25 && !refused; ++i) {
    try {
      c.send("\r\n");
    } catch (const std::exception&) {
      refused = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(refused);
}
