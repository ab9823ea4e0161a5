#pragma once

// A connection that is plain TCP or TLS over TCP, decided when it starts: one stream type for
// the session and the upstream exchange instead of a second copy of either. A plain
// connection costs one branch per operation.
//
// TLS runs OpenSSL on the socket's own descriptor, as nginx and HAProxy do: OpenSSL reads and
// writes the non-blocking socket itself, and the stream waits for the readiness it asks for
// (SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE). Asio's ssl::stream instead passes every byte
// through a memory BIO pair, with a copy and a composed operation per step and about 68 KiB
// of buffers per connection; BENCHMARKS.md ("TLS beside nginx") has what that cost.

#include "proxy/detail/net.hpp"

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>

namespace tokengate::proxy::detail {

/// Makes each read of socket `fd`, and of the connections it accepts if it listens, say how
/// many bytes it left unread, or 1 after the peer's close (TCP_INQ, Linux 4.18): what lets
/// flex_stream::read_ready skip a try. Without it (an older kernel) reads are tried as Asio's.
void report_unread_bytes(int fd) noexcept;

/// An error code and a byte count: what a read or a write gives back.
using io_outcome = std::tuple<boost::system::error_code, std::size_t>;

enum class tls_role { server, client };

/// What a ready operation of flex_stream tries each time the socket may have something
/// (proxy/detail/ready_read.hpp): a read, a step of the TLS handshake, or a look at the first
/// bytes.
enum class ready_step : unsigned char { read, handshake, peek };

/// The socket under a TLS session, as OpenSSL reads and writes it (socket_bio_method in
/// flex_stream.cpp).
struct tls_socket_state {
  int fd = -1;
  int left = -1;    ///< what its last read left in the socket; -1: unknown
  bool eof = false; ///< a read found the peer's close
};

class flex_stream {
public:
  using executor_type = tcp::socket::executor_type;

  explicit flex_stream(tcp::socket socket) : socket_(std::move(socket)) {}
  explicit flex_stream(const net::any_io_executor& ex) : socket_(ex) {}
  flex_stream(const flex_stream&) = delete;
  flex_stream& operator=(const flex_stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }

  /// The TCP socket: for connect, options, shutdown and close, and for plain I/O.
  tcp::socket& socket() noexcept { return socket_; }
  /// The TLS session, or nullptr on a plain connection.
  [[nodiscard]] SSL* tls() const noexcept { return ssl_.get(); }
  [[nodiscard]] bool is_tls() const noexcept { return ssl_ != nullptr; }

  /// Puts a TLS session made from `context` over the socket (before the handshake). False
  /// when OpenSSL cannot make one. The context must outlive the stream.
  [[nodiscard]] bool start_tls(net::ssl::context& context, tls_role role);

  /// The TLS handshake; eof or stream_truncated when the peer closes during it. Its waits for
  /// the peer are ready reads' (see read_ready): no re-arming of the socket in epoll.
  net::awaitable<boost::system::error_code> handshake();
  /// Waits until the peer has sent something or closed, and copies the first bytes into
  /// `into` without taking them from the socket: how many, or eof after a close. Tried at
  /// once, so a client whose first bytes came with its connection costs no wait.
  net::awaitable<io_outcome> peek_ready(net::mutable_buffer into);
  /// Reads what has arrived (at least one byte): eof after the peer's close_notify,
  /// stream_truncated after a close without one.
  net::awaitable<io_outcome> tls_read_some(net::mutable_buffer into);

  /// What a ready read puts its bytes into: `into`, or when `take` is set, what `take(self)`
  /// gives once something has come.
  struct read_target {
    net::mutable_buffer into{};
    net::mutable_buffer (*take)(void* self) = nullptr;
    void* self = nullptr;

    [[nodiscard]] net::mutable_buffer get() const { return take ? take(self) : into; }
  };
  /// Reads what has arrived, or waits for it, plain or over TLS: at least one byte, or an
  /// error as tls_read_some and a socket read give. The buffer is asked for only once there is
  /// something to read, so a connection that waits for its next request holds none.
  ///
  /// Unlike Asio's reads and waits, it remembers a read that took all the socket had (the
  /// kernel says so when asked, see report_unread_bytes): the next read of this socket then
  /// waits for the event loop's word that bytes have come, without first trying the socket (a
  /// read that would find nothing) or re-arming it in epoll (a wait), as nginx's
  /// edge-triggered reads do. That is a system call less per read that follows one that
  /// emptied the socket: the client's next request, the pooled upstream connection's watch,
  /// the rest of an answer. (The operation: proxy/detail/ready_read.hpp.)
  net::awaitable<io_outcome> read_ready(read_target target);
  /// The same for a plain connection, with a callback: the pool's watch of an idle one.
  void read_ready(read_target target,
                  std::function<void(const boost::system::error_code&, std::size_t)> done);
  /// Writes every byte of `buffers` (at most four); small ones go out together in one TLS
  /// record. `buffers` may go once this returns; the bytes they point to must stay until the
  /// write completes.
  net::awaitable<io_outcome> tls_write(std::span<const net::const_buffer> buffers);
  /// Sends close_notify and, when `wait_for_peer`, waits for the peer's.
  net::awaitable<boost::system::error_code> tls_shutdown(bool wait_for_peer = true);
  /// Whether nothing has arrived on the socket: no bytes and no close (a non-blocking peek).
  [[nodiscard]] bool nothing_arrived() noexcept;
  /// Whether every byte written has reached the peer (the kernel's send queue holds none that
  /// the peer has not acknowledged): a reset now would take nothing from it.
  [[nodiscard]] bool all_delivered() noexcept;
  /// A plain read of what has arrived, without waiting: the bytes, eof, or 0 bytes and no
  /// error when nothing has (a wait said it had: the next wait ends when it does).
  [[nodiscard]] io_outcome read_now(net::mutable_buffer into) noexcept;
  /// Writes `bytes` without waiting (one send, or one SSL_write once TLS is up): true when all
  /// of them went out. For a last word on a connection whose loop has stopped.
  [[nodiscard]] bool write_now(std::string_view bytes) noexcept;
  /// Whether the TLS layer holds bytes it read from the socket and nobody has read from it.
  [[nodiscard]] bool tls_buffered() const noexcept {
    return ssl_ != nullptr && SSL_has_pending(ssl_.get()) == 1;
  }

  /// Cancels the socket's waits (a TLS operation waits on the socket too).
  void cancel() noexcept {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  /// Closes a connection that is idle between exchanges: over TLS, first sends close_notify
  /// when it can go out at once (RFC 8446 6.1: a peer that keeps sessions in a cache drops one
  /// whose connection ends without it), then closes the socket. Never waits.
  void close_idle() noexcept;

  /// Closes the socket. The TLS session stays until the stream goes, but makes no more calls:
  /// every TLS step first checks that the socket is open (its descriptor may be reused).
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

private:
  friend struct ready_read_access;

  struct ssl_free {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
  };

  /// Runs `step` (one OpenSSL call on the session) until it completes, waiting on the socket
  /// for what it asks.
  template <class Step> net::awaitable<io_outcome> drive(Step step);
  /// read_ready's coroutine: over TLS (and with another Boost, also for a plain read).
  net::awaitable<io_outcome> tls_read_ready(read_target target);

  /// One try of a ready operation, as the event loop's reactor makes it: 0 when it found
  /// nothing (wait on), 1 when it is done, 2 when it is done and took all the socket had.
  /// `events`: what epoll reported of the socket, or 0 for the try as the operation starts.
  int try_ready(ready_step step, read_target target, std::uint32_t events,
                boost::system::error_code& ec, std::size_t& n) noexcept;
  int try_ready_read(read_target target, std::uint32_t events, boost::system::error_code& ec,
                     std::size_t& n) noexcept;
  /// A step of the handshake; OpenSSL's wish to write ends it with tls_wants_write_ set.
  int try_ready_handshake(std::uint32_t events, boost::system::error_code& ec) noexcept;
  int try_ready_peek(net::mutable_buffer into, boost::system::error_code& ec,
                     std::size_t& n) noexcept;

  tcp::socket socket_;
  std::unique_ptr<SSL, ssl_free> ssl_;
  std::string gather_;               ///< small buffers written as one record
  void* reactor_ = nullptr;          ///< the loop's reactor, found at the first ready read
  net::mutable_buffer tls_target_;   ///< a ready read's buffer, when OpenSSL asked to write
  bool tls_wants_write_ = false;     ///< a ready read or handshake stopped for OpenSSL's write
  bool ready_read_starting_ = false; ///< the reactor's try is the one as a ready read starts
  bool skip_starting_try_ = false;   ///< the caller has just tried: the next start makes none
  tls_socket_state tls_socket_;
};

} // namespace tokengate::proxy::detail
