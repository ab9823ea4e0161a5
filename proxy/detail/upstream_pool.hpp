#pragma once

#include "proxy/byte_buffer.hpp"
#include "proxy/detail/flex_stream.hpp"

#include <atomic>
#include <memory>
#include <vector>

namespace tokengate::proxy::detail {

/// One connection to the upstream and the bytes read from it but not yet relayed.
struct upstream_connection {
  explicit upstream_connection(const net::any_io_executor& ex) : stream(ex) {}
  ~upstream_connection() {
    if (open_gauge)
      open_gauge->fetch_sub(1, std::memory_order_relaxed);
  }
  upstream_connection(const upstream_connection&) = delete;
  upstream_connection& operator=(const upstream_connection&) = delete;

  /// Counts this connection in `gauge` (connections open) until it is destroyed.
  void count_in(std::atomic<std::int64_t>& gauge) {
    open_gauge = &gauge;
    gauge.fetch_add(1, std::memory_order_relaxed);
  }

  /// The TLS context the connection was made with (declared first: it outlives the stream).
  std::shared_ptr<net::ssl::context> tls_context;
  flex_stream stream; ///< plain, or TLS to an https:// upstream
  byte_buffer buffer;
  steady::time_point idle_since{};
  std::atomic<std::int64_t>* open_gauge = nullptr;
};

/// Keep-alive connections to the upstream, one pool per event loop (so: no locks). LIFO, so
/// the warmest connection is reused first.
class upstream_pool {
public:
  upstream_pool(net::io_context& io, std::size_t max_idle, std::chrono::seconds max_idle_time);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// An idle connection, or nullptr. Every candidate is first checked with a non-blocking peek:
  /// a FIN, or bytes that arrived after its last answer (a 408 of an upstream's idle timeout, or
  /// a late body of a broken one), mean it cannot be used. Those bytes answer no request, and
  /// sent the next one, they would be read as its answer: another client's. A FIN that comes
  /// after the check is the caller's to retry.
  [[nodiscard]] std::unique_ptr<upstream_connection> take();

  /// A new, unconnected connection.
  [[nodiscard]] std::unique_ptr<upstream_connection> make();

  /// Keeps `c` for a later request (or closes it when the pool is full).
  void give_back(std::unique_ptr<upstream_connection> c);

  /// Closes every idle connection (at a stop, once the loop has ended).
  void close_all() noexcept;

  /// Keeps the TLS session of `tls`, made with `context`, when it can be resumed, for the next
  /// handshake.
  void keep_session(SSL* tls, const std::shared_ptr<net::ssl::context>& context);
  /// Offers the kept TLS session (if any) in the handshake of `tls` when it was made with the
  /// same `context`: a session of a replaced context would resume the old client certificate.
  void offer_session(SSL* tls, const net::ssl::context* context);

private:
  net::io_context& io_;
  std::size_t max_idle_;
  std::chrono::seconds max_idle_time_;
  std::vector<std::unique_ptr<upstream_connection>> idle_;
  SSL_SESSION* tls_session_ = nullptr; ///< owned: the last resumable session
  /// The context tls_session_ was made with, held so that its address names no other.
  std::shared_ptr<net::ssl::context> session_context_;
};

} // namespace tokengate::proxy::detail
