// TLS connections driven by a bare OpenSSL client (blocking, one record per write): what
// tokengate's own TLS layer does with the TLS 1.3 post-handshake messages a client may send, a
// TLS 1.2 renegotiation attempt, requests in separate records that arrive together, and the
// close of a connection whose client never answers close_notify.
#include "tests/integration/tls_fixture.hpp"

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

using namespace tokengate;
using test::tls_fixture;

namespace {

/// A blocking OpenSSL client on one connection to 127.0.0.1; every wait is bounded (10 s) so
/// that a server that hangs fails the test instead of stopping it.
class bare_tls {
public:
  bare_tls(std::uint16_t port, const std::filesystem::path& ca, int max_version = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval wait{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
    ctx_ = SSL_CTX_new(TLS_client_method());
    REQUIRE(SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (max_version != 0)
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    // Every session ticket the server sends is counted (TLS 1.3 sends them after the handshake).
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(ctx_, [](SSL* s, SSL_SESSION*) {
      ++static_cast<bare_tls*>(SSL_get_app_data(s))->tickets_;
      return 0; // no reference kept
    });
    ssl_ = SSL_new(ctx_);
    SSL_set_app_data(ssl_, this);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    REQUIRE(SSL_connect(ssl_) == 1);
  }
  ~bare_tls() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  bare_tls(const bare_tls&) = delete;
  bare_tls& operator=(const bare_tls&) = delete;

  SSL* ssl() { return ssl_; }
  /// The session tickets received so far.
  [[nodiscard]] int tickets() const { return tickets_; }

  /// The TLS record that send(`plain`) would write, for the test to send as it likes: the
  /// session's sequence number moves on as if it had been sent.
  std::string record_of(std::string_view plain) {
    BIO* memory = BIO_new(BIO_s_mem());
    BIO* socket = SSL_get_wbio(ssl_);
    BIO_up_ref(socket);
    SSL_set0_wbio(ssl_, memory);
    std::size_t n = 0;
    const bool written = SSL_write_ex(ssl_, plain.data(), plain.size(), &n) == 1;
    char* bytes = nullptr;
    const auto length = BIO_get_mem_data(memory, &bytes);
    std::string record(bytes, written ? static_cast<std::size_t>(length) : 0);
    SSL_set0_wbio(ssl_, socket); // frees the memory BIO
    return record;
  }
  /// Closes the TCP connection's sending side, with no close_notify first.
  bool shut_write() { return ::shutdown(fd_, SHUT_WR) == 0; }
  /// Holds what is sent until shut_write(), which sends it with the close.
  bool cork() {
    const int on = 1;
    return ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0;
  }
  /// Sends bytes as they are, on the TCP connection.
  bool send_raw(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  /// Sends `bytes` as one TLS record.
  bool send(std::string_view bytes) {
    std::size_t n = 0;
    return SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) == 1 && n == bytes.size();
  }

  /// Reads until `count` whole answers with a Content-Length have arrived (or the stream ends).
  std::string read_answers(int count) {
    std::string got;
    while (answers_in(got) < count) {
      char chunk[4096];
      std::size_t n = 0;
      if (SSL_read_ex(ssl_, chunk, sizeof chunk, &n) != 1)
        break;
      got.append(chunk, n);
    }
    return got;
  }

  /// What the next read says: "data", "close_notify", "eof" (a close without close_notify),
  /// "timeout" or "error".
  std::string next_event() {
    char chunk[4096];
    std::size_t n = 0;
    if (SSL_read_ex(ssl_, chunk, sizeof chunk, &n) == 1)
      return "data";
    const int e = SSL_get_error(ssl_, 0);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
      return "close_notify";
    if (e == SSL_ERROR_WANT_READ || errno == EAGAIN)
      return "timeout";
    return e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL ? "eof" : "error";
  }

  /// Whether the server closed the TCP connection (read returns 0 within 10 s).
  bool tcp_closed() {
    char c;
    for (;;) {
      const auto n = ::recv(fd_, &c, 1, 0);
      if (n == 0)
        return true;
      if (n < 0)
        return errno == ECONNRESET;
    }
  }

private:
  static int answers_in(std::string_view s) {
    int count = 0;
    for (;;) {
      const auto end = s.find("\r\n\r\n");
      if (end == std::string_view::npos)
        return count;
      const auto at = s.find("Content-Length: ");
      if (at == std::string_view::npos || at > end)
        return count;
      const auto length = std::stoul(std::string(s.substr(at + 16, 12)));
      if (s.size() < end + 4 + length)
        return count;
      ++count;
      s.remove_prefix(end + 4 + length);
    }
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int tickets_ = 0;
};

constexpr std::string_view get_x = "GET /public/x HTTP/1.1\r\nHost: x\r\n\r\n";

/// A 3 MB download through `c` arrives whole, and so does a 2 MiB upload at `upstream`.
void check_large_bodies(test::tls_client& c, const test::test_upstream& upstream) {
  const auto down = c.request("GET", "/public/download?bytes=3000001");
  CHECK(down.status == 200);
  CHECK(down.body.size() == 3000001);
  const std::string body(2 * 1024 * 1024 + 7, 'b');
  CHECK(c.request("POST", "/public/upload", {}, body).status == 200);
  CHECK(upstream.last().body_bytes == body.size());
  CHECK(upstream.last().body_hash == test::fnv1a(body));
}

} // namespace

TEST_CASE("a TLS 1.3 handshake gives the client one session ticket, and it resumes", "[tls]") {
  tls_fixture f;
  SSL_SESSION* kept = nullptr;
  {
    bare_tls c(f.gate.port(), f.ca.cert_file());
    REQUIRE(c.send(get_x));
    // The tickets come before the answer: all of them have been read with it.
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(c.tickets() == 1);
    // A copy: the client's own session stops being resumable when it closes unannounced.
    kept = SSL_SESSION_dup(SSL_get0_session(c.ssl()));
  }
  REQUIRE(kept != nullptr);
  auto options = f.trusting();
  options.resume = test::tls_session(kept, SSL_SESSION_free);
  test::tls_client again(f.gate.port(), options);
  CHECK(again.resumed());
  CHECK(again.request("GET", "/public/x").status == 200);
}

TEST_CASE("a session stays resumable when its client closes without close_notify as the server "
          "closes",
          "[tls]") {
  tls_fixture f;
  test::tls_session kept;
  {
    bare_tls c(f.gate.port(), f.ca.cert_file());
    bool with_request = false;
    SECTION("the client closes its side with the request: the server waits for its close") {
      // The server sends close_notify, waits for the client's, and finds the end of the stream.
      with_request = true;
    }
    SECTION("the client closes once it has the answer") {}
    if (with_request)
      REQUIRE(c.cork()); // the close arrives with the request, before the answer is out
    REQUIRE(c.send("GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    if (with_request)
      REQUIRE(c.shut_write());
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(c.next_event() == "close_notify");
    kept = test::tls_session(SSL_SESSION_dup(SSL_get0_session(c.ssl())), SSL_SESSION_free);
    if (!with_request)
      REQUIRE(c.shut_write());
    CHECK(c.tcp_closed());
  }
  REQUIRE(kept != nullptr);
  auto options = f.trusting();
  options.resume = kept;
  test::tls_client again(f.gate.port(), options);
  CHECK(again.resumed());
  CHECK(again.request("GET", "/public/x").status == 200);
}

TEST_CASE("a TLS 1.3 client's KeyUpdate is answered and the connection goes on", "[tls]") {
  tls_fixture f;
  bare_tls c(f.gate.port(), f.ca.cert_file());
  REQUIRE(c.send(get_x));
  CHECK(test::status_of(c.read_answers(1)) == 200);
  for (int i = 0; i < 3; ++i) {
    // The update asks the server to update its keys too: its next record is its KeyUpdate.
    REQUIRE(SSL_key_update(c.ssl(), SSL_KEY_UPDATE_REQUESTED) == 1);
    REQUIRE(c.send(get_x));
    CHECK(test::status_of(c.read_answers(1)) == 200);
  }
  CHECK(f.upstream.requests().size() == 4);
}

TEST_CASE("requests in separate TLS records that arrive together are each answered", "[tls]") {
  tls_fixture f;
  bare_tls c(f.gate.port(), f.ca.cert_file());
  // Three records written at once: OpenSSL reads ahead, so the later ones wait in its buffer,
  // not in the socket.
  for (int i = 0; i < 3; ++i)
    REQUIRE(c.send(get_x));
  const auto got = c.read_answers(3);
  CHECK(test::status_of(got) == 200);
  CHECK(f.upstream.requests().size() == 3);
}

TEST_CASE("a TLS 1.2 renegotiation is refused and the connection still serves", "[tls]") {
  tls_fixture f;
  bare_tls c(f.gate.port(), f.ca.cert_file(), TLS1_2_VERSION);
  REQUIRE(c.send(get_x));
  CHECK(test::status_of(c.read_answers(1)) == 200);
  REQUIRE(SSL_renegotiate(c.ssl()) == 1);
  // The client's hello goes out; the server answers with a no_renegotiation alert, which
  // this client takes as the end of the handshake it asked for.
  (void)SSL_do_handshake(c.ssl());
  ERR_clear_error();
  // Whatever became of that connection, the server serves new ones.
  bare_tls next(f.gate.port(), f.ca.cert_file(), TLS1_2_VERSION);
  REQUIRE(next.send(get_x));
  CHECK(test::status_of(next.read_answers(1)) == 200);
}

TEST_CASE("after a closing answer, a TLS client that never answers close_notify is closed",
          "[tls]") {
  tls_fixture f;
  SECTION("the client stays silent") {
    bare_tls c(f.gate.port(), f.ca.cert_file());
    REQUIRE(c.send("GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(c.next_event() == "close_notify");
    CHECK(c.tcp_closed());
  }
  SECTION("the client sends another request instead") {
    bare_tls c(f.gate.port(), f.ca.cert_file());
    REQUIRE(c.send("GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(c.send(get_x));
    CHECK(c.next_event() == "close_notify");
    CHECK(c.tcp_closed());
    CHECK(f.upstream.requests().size() == 1);
  }
}

TEST_CASE("a TLS client that sends close_notify right after its request still gets the answer",
          "[tls]") {
  tls_fixture f;
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    bare_tls c(f.gate.port(), f.ca.cert_file(), version);
    REQUIRE(c.send(get_x));
    REQUIRE(SSL_shutdown(c.ssl()) == 0); // sent; the server's comes later
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(c.next_event() == "close_notify");
  }
}

TEST_CASE("large bodies cross TLS both ways whole, whatever the record sizes", "[tls]") {
  tls_fixture f;
  test::tls_client c(f.gate.port(), f.trusting());
  check_large_bodies(c, f.upstream);
  const auto chunked = c.request("GET", "/public/download?bytes=2000003&chunked=1");
  CHECK(chunked.status == 200);
  CHECK(chunked.body.size() == 2000003);
}

TEST_CASE("large bodies cross TLS on both sides whole: TLS client, https upstream", "[tls]") {
  test::https_upstream_fixture f(true);
  test::tls_client c(f.gate.port(), test::trusting(f.ca.cert_file()));
  for (int i = 0; i < 2; ++i)
    check_large_bodies(c, f.upstream);
  CHECK(f.upstream.connections() == 1);
}

TEST_CASE("a TLS client that stops reading a large answer is closed after idle_timeout_ms, and "
          "the server goes on",
          "[tls][limits]") {
  tls_fixture f([](proxy::limits& l) { l.idle_timeout = std::chrono::milliseconds(300); });
  {
    bare_tls stalled(f.gate.port(), f.ca.cert_file());
    REQUIRE(stalled.send("GET /public/download?bytes=50000000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    // The server's write stops mid-record on a full socket; the deadline ends it, and the close
    // (without a close_notify that cannot go out) follows within the linger time.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(stalled.tcp_closed());
  }
  bare_tls next(f.gate.port(), f.ca.cert_file());
  REQUIRE(next.send(get_x));
  CHECK(test::status_of(next.read_answers(1)) == 200);
}

TEST_CASE("between requests a TLS connection takes what comes next in any shape, closes on a "
          "close_notify, on a stop and after idle_timeout_ms",
          "[tls][limits]") {
  using namespace std::chrono_literals;
  tls_fixture f([](proxy::limits& l) { l.idle_timeout = 30s; });
  bare_tls c(f.gate.port(), f.ca.cert_file());
  REQUIRE(c.send(get_x));
  REQUIRE(test::status_of(c.read_answers(1)) == 200);
  // Each pause lets the server settle into its wait for the next request before more comes.
  SECTION("empty lines, one split in two, then a head in three records") {
    for (const auto piece : test::next_request_in_pieces) {
      std::this_thread::sleep_for(50ms);
      REQUIRE(c.send(piece));
    }
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(f.upstream.requests().size() == 2);
  }
  SECTION("the client's close_notify") {
    std::this_thread::sleep_for(50ms);
    REQUIRE(SSL_shutdown(c.ssl()) == 0);
    CHECK(c.next_event() == "close_notify");
    CHECK(c.tcp_closed());
  }
  SECTION("a stop, long before idle_timeout_ms") {
    std::this_thread::sleep_for(50ms);
    f.gate.stop();
    CHECK(c.tcp_closed());
  }
  SECTION("a KeyUpdate alone, then a request") {
    std::this_thread::sleep_for(50ms);
    REQUIRE(SSL_key_update(c.ssl(), SSL_KEY_UPDATE_REQUESTED) == 1);
    REQUIRE(SSL_do_handshake(c.ssl()) == 1); // the KeyUpdate goes out alone, with no data
    std::this_thread::sleep_for(50ms);
    REQUIRE(c.send(get_x));
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(f.upstream.requests().size() == 2);
  }
  SECTION("a request's record in four TCP segments") {
    const auto record = c.record_of(get_x);
    REQUIRE(record.size() > 20);
    for (const auto& [at, length] :
         {std::pair<std::size_t, std::size_t>{0, 1}, {1, 4}, {5, 10}, {15, std::string::npos}}) {
      std::this_thread::sleep_for(50ms);
      REQUIRE(c.send_raw(record.substr(at, length)));
    }
    CHECK(test::status_of(c.read_answers(1)) == 200);
    CHECK(f.upstream.requests().size() == 2);
  }
  SECTION("a stop while part of a record has come") {
    REQUIRE(c.send_raw(c.record_of(get_x).substr(0, 3)));
    std::this_thread::sleep_for(50ms);
    f.gate.stop();
    CHECK(c.tcp_closed());
    CHECK(f.upstream.requests().size() == 1);
  }
}

TEST_CASE("an idle TLS keep-alive connection is closed after idle_timeout_ms, not before",
          "[tls][limits]") {
  using namespace std::chrono_literals;
  tls_fixture f([](proxy::limits& l) { l.idle_timeout = 400ms; });
  bare_tls c(f.gate.port(), f.ca.cert_file());
  REQUIRE(c.send(get_x));
  REQUIRE(test::status_of(c.read_answers(1)) == 200);
  std::this_thread::sleep_for(100ms);
  REQUIRE(c.send(get_x));
  CHECK(test::status_of(c.read_answers(1)) == 200);
  CHECK(c.tcp_closed()); // within bare_tls's 10 s bound
  CHECK(f.upstream.requests().size() == 2);
}
