#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tokengate::test {

/// What the TLS handshake of a request's connection told the upstream (empty over plain HTTP).
struct seen_tls {
  std::string server_name;    ///< the name the client sent in SNI
  std::string client_subject; ///< the client certificate's subject (RFC 2253), if it showed one
  std::string client_serial;  ///< its serial number (hex)
};

/// What the upstream received in one request.
struct seen_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers; ///< in order, names as sent
  std::uint64_t body_bytes = 0;
  std::uint64_t body_hash = 0; ///< FNV-1a over the whole body
  std::string body;            ///< the first 64 KiB
  seen_tls tls;                ///< of the connection the request came on

  /// The first value of `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  /// How many fields named `name` (case-insensitive) arrived.
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

/// FNV-1a, as the test upstream computes it over bodies.
[[nodiscard]] std::uint64_t fnv1a(std::string_view bytes,
                                  std::uint64_t seed = 14695981039346656037ull);

/// The byte at offset `i` of every generated download: a pattern the tests can check.
[[nodiscard]] inline char pattern_byte(std::uint64_t i) { return static_cast<char>('a' + i % 26); }

/// The whole answer of /answer-first.
inline constexpr std::string_view answered_first =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nanswered first";

/// A certificate pair for a test upstream that speaks TLS.
struct upstream_tls_files {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file = {}; ///< set: clients must show a certificate this CA signed
};

/// A real HTTP/1.1 server on 127.0.0.1 (Boost.Beast, a thread per connection), standing in for
/// the backend. By the last segment of the path it receives (so "/public/slow" is "/slow"):
///   /download?bytes=N[&chunked=1][&stray=1]
///                                  N pattern bytes, Content-Length or chunked; with stray=1
///                                  (Content-Length) a stray 408 right behind them, in the
///                                  same write (keep-alive)
///   /slow?ms=N                     waits N ms, then echoes
///   /status/NNN                    answers NNN (no body for 204 and 304)
///   /chunked                       a small chunked echo
///   /close[?cut=1]                 an echo delimited by closing the connection (no length);
///                                  over TLS the close follows close_notify, unless cut=1
///   /early-hints                   a 103 Early Hints, then the echo
///   /hints?n=N&ms=M                N 103 Early Hints, M ms apart, then the echo
///   /trickle-head?ms=N             the echo, its head a byte every N ms
///   /big-head?kib=N                200 "ok" with a head of N KiB, written at once
///   /switch                        101 Switching Protocols (nothing asked for it), a few bytes,
///                                  then a close after 500 ms
///   /stall-body?ms=N               200 with Content-Length 10: 5 bytes with the head, the
///                                  other 5 after N ms
///   /bad-chunk                     a chunked 200 whose first chunk size is not hex, then a close
///   /late-after?ms=N               the echo (keep-alive), then after N ms a late 200 answer
///                                  ("LATE-BODY") on the idle connection, which stays open
///   /no-content-late?ms=N          the same after a 204 that announces a 38-byte body
///   /drop-after                    the echo (keep-alive), then closes the idle connection
///   /hang-up                       closes the connection without answering
///   /reset-after-part              a head promising 1000 bytes, 10 of them, then a reset
///   /timeout-after                 the echo (keep-alive), then a 408 and a close while idle
///   /ticket-after                  the echo (keep-alive) and, over TLS 1.3, a session ticket,
///                                  sent together
///   /stray-after                   the echo (keep-alive) and a stray 408, sent together
///   /answer-first                  `answered_first` (keep-alive) as soon as the head is in,
///                                  then the body is read
///   anything else                  200 with a JSON echo: method, target, headers, body size
/// Bodies are read as streams (any size) and summarised in `requests()`.
class test_upstream {
public:
  /// Binds 127.0.0.1 on `port` (0: any free port) and starts serving; over TLS (HTTPS) with
  /// the pair in `tls`, when set.
  explicit test_upstream(std::uint16_t port = 0, const upstream_tls_files& tls = {});
  ~test_upstream();
  test_upstream(const test_upstream&) = delete;
  test_upstream& operator=(const test_upstream&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::vector<seen_request> requests() const;
  [[nodiscard]] seen_request last() const;
  [[nodiscard]] std::size_t connections() const;
  /// TLS handshakes completed, and how many of them resumed an earlier session.
  [[nodiscard]] std::size_t tls_handshakes() const;
  [[nodiscard]] std::size_t tls_resumed() const;
  /// Connections the client ended between requests (plain or TLS).
  [[nodiscard]] std::size_t closed_idle() const;
  /// Whether closed_idle() reaches `n` within `wait`.
  [[nodiscard]] bool closed_idle_reaches(std::size_t n, std::chrono::milliseconds wait) const;
  /// TLS connections the client ended between requests with close_notify, and without one.
  [[nodiscard]] std::size_t tls_closed_with_notify() const;
  [[nodiscard]] std::size_t tls_closed_without_notify() const;
  void clear();

  /// Serves until stopped; for the stand-alone echo-upstream program.
  void wait();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A listener on 127.0.0.1 that accepts nothing, its queue filled: the kernel drops every new
/// connection's SYN, so a connection to it is never made, as with a host that has gone away.
class black_hole {
public:
  black_hole();
  ~black_hole();
  black_hole(const black_hole&) = delete;
  black_hole& operator=(const black_hole&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }

private:
  int listener_ = -1;
  std::vector<int> fillers_;
  std::uint16_t port_ = 0;
};

} // namespace tokengate::test
