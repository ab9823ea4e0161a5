#pragma once

// Reads and writes with deadlines, for both of a connection's sockets (the client's and the
// upstream's): one wrapper, whatever the stream type.

#include "proxy/byte_buffer.hpp"
#include "proxy/detail/flex_stream.hpp"

#include <array>
#include <span>
#include <tuple>

namespace tokengate::proxy::detail {

/// A connection's one deadline. Setting it is a store, never a timer syscall; the worker's
/// sweeper cancels the sockets of a connection whose deadline has passed.
struct deadline {
  steady::time_point at = steady::time_point::max();
  bool timed_out = false;
  /// The sidecar's stop cut the connection short (`cut()`): every wait after it is due at once,
  /// so the sweeper ends it too.
  bool shutdown = false;

  void expire_after(steady::duration d) noexcept {
    at = shutdown ? steady::time_point::min() : coarse_now() + d;
    timed_out = false;
  }
  /// Ends the wait under way (the caller cancels the sockets) and every one after it.
  void cut() noexcept {
    shutdown = true;
    timed_out = true;
    at = steady::time_point::min();
  }
  /// For the sweeper: true (once) when the deadline has passed; it is then marked and disarmed.
  /// After a cut it stays due: a wait that began as the cut ran (its event already in) is ended
  /// by the next sweep.
  bool expire_if_due(steady::time_point now) noexcept {
    if (now < at)
      return false;
    timed_out = true;
    at = shutdown ? steady::time_point::min() : steady::time_point::max();
    return true;
  }
};

struct io_result {
  boost::system::error_code ec;
  std::size_t bytes = 0;
  bool timed_out = false;
  explicit operator bool() const noexcept { return !ec; }
};

/// A write begun without waiting: what went out at once, and what is left for the reactor.
struct started_write {
  boost::system::error_code ec;
  std::size_t written = 0;
  std::array<net::const_buffer, 4> rest{};
  std::size_t rest_count = 0; ///< 0: finished (or failed)

  [[nodiscard]] std::span<const net::const_buffer> remaining() const {
    return {rest.data(), rest_count};
  }
};

/// Writes what a non-blocking socket takes at once (the usual case: no reactor round, no
/// handler, no coroutine frame) and returns the rest for `net::async_write`. At most four
/// buffers.
template <class Buffers> started_write start_write(tcp::socket& s, const Buffers& buffers) {
  started_write w;
  const auto total = net::buffer_size(buffers);
  w.written = s.write_some(buffers, w.ec);
  if (w.ec != net::error::would_block && (w.ec || w.written == total))
    return w;
  w.ec = {};
  std::size_t skip = w.written;
  for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
       ++it) {
    net::const_buffer b(*it);
    const auto drop = std::min(skip, b.size());
    skip -= drop;
    b += drop;
    if (b.size() != 0)
      w.rest[w.rest_count++] = b;
  }
  return w;
}

/// A stream, the bytes read from it and not yet used, the connection's deadline, and how long
/// one wait on this stream may take. A view: cheap to make for each request.
template <class Stream> struct timed_stream {
  Stream& stream;
  byte_buffer& buffer;
  deadline& clock;
  steady::duration timeout;
  std::uint64_t* written = nullptr;      ///< counts the bytes written, when set
  steady::time_point* read_at = nullptr; ///< when the last read ended, when set

  /// Reads at most `max` more bytes into `buffer`.
  net::awaitable<io_result> read(std::size_t max) {
    clock.expire_after(timeout);
    const auto [ec, n] =
        co_await stream.read_ready({.into = net::buffer(buffer.prepare(max).data(), max)});
    buffer.commit(n);
    if (read_at)
      *read_at = steady::now();
    co_return io_result{ec, n, ec && clock.timed_out};
  }

  /// Writes every byte of `buffers` (a sequence of at most four).
  template <class Buffers>
  requires net::is_const_buffer_sequence<Buffers>::value net::awaitable<io_result>
  write(const Buffers& buffers) {
    clock.expire_after(timeout);
    started_write w;
    if (stream.is_tls()) {
      std::array<net::const_buffer, 4> parts{};
      std::size_t count = 0;
      for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
           ++it)
        parts.at(count++) = *it;
      std::tie(w.ec, w.written) = co_await stream.tls_write({parts.data(), count});
    } else {
      w = start_write(stream.socket(), buffers);
      if (w.rest_count != 0) {
        auto [ec, n] = co_await net::async_write(stream.socket(), w.remaining(), nothrow);
        w.ec = ec;
        w.written += n;
      }
    }
    if (written)
      *written += w.written;
    co_return io_result{w.ec, w.written, w.ec && clock.timed_out};
  }

  net::awaitable<io_result> write(std::string_view bytes) {
    co_return co_await write(net::buffer(bytes.data(), bytes.size()));
  }
};

} // namespace tokengate::proxy::detail
