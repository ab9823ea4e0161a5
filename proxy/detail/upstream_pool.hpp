#pragma once

#include "proxy/byte_buffer.hpp"
#include "proxy/detail/flex_stream.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

namespace tokengate::proxy::detail {

/// How many bytes one read from the upstream asks for.
inline constexpr std::size_t upstream_read_chunk = 16 * 1024;

struct upstream_connection;

/// The read a plain pooled connection keeps under way while it is idle, as nginx keeps a read
/// event on the upstream connections it caches. Its handler owns this; the connection holds it
/// until a request takes the read up (`upstream_connection::take_watch`).
struct idle_watch {
  /// What the read got while nobody waited for it: the upstream closed the connection, or sent
  /// bytes no request asked for.
  std::optional<io_outcome> ended;
  /// The request waiting for the read: its answer's first bytes. (An optional, set with
  /// emplace: Boost 1.81's any_completion_handler move assignment wraps itself endlessly.)
  std::optional<net::any_completion_handler<void(boost::system::error_code, std::size_t)>> waiter;
  /// The connection while it sits in the pool: a watch that ends there closes it at once (its
  /// socket would otherwise wait in CLOSE-WAIT until `take` came to it).
  upstream_connection* pooled = nullptr;

  /// The read's end: to the waiting request, or kept (and the pooled connection closed).
  void end(const boost::system::error_code& ec, std::size_t n);
};

/// One connection to the upstream and the bytes read from it but not yet relayed.
struct upstream_connection {
  explicit upstream_connection(const net::any_io_executor& ex) : stream(ex) {}
  ~upstream_connection() {
    if (watch)
      watch->pooled = nullptr; // its handler may still run, on a closed socket
    if (open_gauge)
      open_gauge->fetch_sub(1, std::memory_order_relaxed);
  }
  upstream_connection(const upstream_connection&) = delete;
  upstream_connection& operator=(const upstream_connection&) = delete;

  /// Counts this connection in `gauge` (connections open) until it is closed for good.
  void count_in(std::atomic<std::int64_t>& gauge) {
    open_gauge = &gauge;
    gauge.fetch_add(1, std::memory_order_relaxed);
  }
  /// Closes the socket, and counts the connection closed, while the object waits to go.
  void close_now() noexcept {
    stream.close();
    if (open_gauge)
      std::exchange(open_gauge, nullptr)->fetch_sub(1, std::memory_order_relaxed);
  }

  /// Waits for the end of the read that watched the connection while it was idle: its error
  /// code and how many bytes it put in `buffer`'s prepared space (the caller commits them).
  /// Only while `watch` is set; it is unset once this is called.
  [[nodiscard]] net::awaitable<io_outcome> take_watch();

  /// The TLS context the connection was made with (declared first: it outlives the stream).
  std::shared_ptr<net::ssl::context> tls_context;
  /// Declared before the stream: a read under way into it ends (the socket closes) first.
  byte_buffer buffer;
  flex_stream stream; ///< plain, or TLS to an https:// upstream
  /// Set from the pool's give_back, for a plain connection, until a request takes the read up.
  std::shared_ptr<idle_watch> watch;
  steady::time_point read_at{}; ///< when its last read ended (steady::now(), not coarse)
  steady::time_point idle_since{};
  std::atomic<std::int64_t>* open_gauge = nullptr;
};

/// Keep-alive connections to the upstream, one pool per event loop (so: no locks). LIFO, so
/// the warmest connection is reused first.
class upstream_pool {
public:
  upstream_pool(net::io_context& io, std::size_t max_idle, std::chrono::milliseconds max_idle_time);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// An idle connection, or nullptr. A FIN, or bytes that arrived after its last answer (a 408
  /// of an upstream's idle timeout, or a late body of a broken one), mean a connection cannot be
  /// used: those bytes answer no request, and sent the next one, they would be read as its
  /// answer, another client's. A plain connection is watched for them by a read under way
  /// since give_back, which the event loop ends when they come; that read then brings the next
  /// answer, so neither the check nor the answer's first wait costs a system call. A TLS
  /// connection is checked with a non-blocking peek. What arrives after the check (or, for a
  /// watched connection, after the loop last looked) is the caller's: a FIN is retried.
  [[nodiscard]] std::unique_ptr<upstream_connection> take();

  /// A new, unconnected connection.
  [[nodiscard]] std::unique_ptr<upstream_connection> make();

  /// Keeps `c` for a later request (a full pool closes its least recently used connection for
  /// it); a plain one is watched from now on (see take). One with bytes past its answer is
  /// closed instead.
  void give_back(std::unique_ptr<upstream_connection> c);

  /// Closes every idle connection (at a stop, once the loop has ended).
  void close_all() noexcept;
  /// Closes the connections idle for `max_idle_time` or longer, and lets go of those whose
  /// watch has ended (closed then): the sweeper's, at `now`.
  void close_expired(steady::time_point now) noexcept;
  /// A new idle limit (limits.upstream_idle_timeout_ms at a live reload), for the connections
  /// already idle too: each is closed at its idle_since plus the new limit.
  void set_max_idle_time(std::chrono::milliseconds limit) noexcept { max_idle_time_ = limit; }
  /// When the oldest idle connection reaches `max_idle_time`; nothing when none is idle.
  [[nodiscard]] std::optional<steady::time_point> next_expiry() const noexcept {
    if (idle_.empty())
      return std::nullopt;
    return idle_.front()->idle_since + max_idle_time_;
  }

  /// Keeps the TLS session of `tls`, made with `context`, when it can be resumed, for the next
  /// handshake.
  void keep_session(SSL* tls, const std::shared_ptr<net::ssl::context>& context);
  /// Offers the kept TLS session (if any) in the handshake of `tls` when it was made with the
  /// same `context`: a session of a replaced context would resume the old client certificate.
  void offer_session(SSL* tls, const net::ssl::context* context);

private:
  /// How long after the answer's last read give_back trusts that nothing has come since.
  static constexpr auto settled_read = std::chrono::microseconds(250);

  /// Begins the read that watches `c` while it is idle.
  static void watch(upstream_connection& c);
  /// Lets go of the idle connections whose watch has ended (their sockets are closed).
  void drop_ended() noexcept;
  /// Whether nothing (no byte, no close) has come on `c` since its last read: a read now.
  static bool nothing_came(upstream_connection& c);

  net::io_context& io_;
  std::size_t max_idle_;
  std::chrono::milliseconds max_idle_time_;
  std::vector<std::unique_ptr<upstream_connection>> idle_;
  SSL_SESSION* tls_session_ = nullptr; ///< owned: the last resumable session
  /// The context tls_session_ was made with, held so that its address names no other.
  std::shared_ptr<net::ssl::context> session_context_;
};

} // namespace tokengate::proxy::detail
