#include "proxy/detail/flex_stream.hpp"

#include "proxy/detail/ready_read.hpp"

#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>

namespace tokengate::proxy::detail {
namespace {

/// What an OpenSSL call's result asks for next.
enum class tls_next { done, read, write };

/// Buffers are gathered into one record up to this size: a head and a small body. Larger ones
/// go out as they are, where a record more costs little; so the gather buffer an idle
/// connection keeps stays small.
constexpr std::size_t max_gather = 4 * 1024;

/// Reads the outcome of an OpenSSL call that returned `ret` (with `saved_errno` as it left it):
/// done (with the error code, if any), or the readiness to wait for before calling again. The
/// codes are those Asio's TLS streams give, so callers compare with the same constants.
tls_next settle(SSL* ssl, int ret, int saved_errno, boost::system::error_code& ec) {
  if (ret == 1)
    return tls_next::done;
  switch (SSL_get_error(ssl, ret)) {
  case SSL_ERROR_WANT_READ:
    return tls_next::read;
  case SSL_ERROR_WANT_WRITE:
    return tls_next::write;
  case SSL_ERROR_ZERO_RETURN: // the peer's close_notify
    ec = net::error::eof;
    break;
  case SSL_ERROR_SYSCALL: // a reset, or a close without close_notify
    ec = saved_errno != 0 ? boost::system::error_code(saved_errno, boost::system::system_category())
                          : boost::system::error_code(net::ssl::error::stream_truncated);
    break;
  case SSL_ERROR_SSL: {
    const auto e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
      ec = net::ssl::error::stream_truncated;
    else
      ec = {static_cast<int>(e), net::error::get_ssl_category()};
    break;
  }
  default:
    ec = net::ssl::error::unspecified_system_error;
    break;
  }
  ERR_clear_error();
  return tls_next::done;
}

/// A non-blocking read of socket `fd` that also learns how many bytes it left in the socket
/// (`left`; 1 after the peer's close; -1 when the kernel does not say: see
/// report_unread_bytes).
ssize_t receive(int fd, void* into, std::size_t size, int& left) noexcept {
  iovec part{into, size};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  message.msg_controllen = control.size();
  left = -1;
  ssize_t n = 0;
  do
    n = ::recvmsg(fd, &message, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c))
    if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ)
      std::memcpy(&left, CMSG_DATA(c), sizeof left);
  return n;
}

// The socket under a TLS session: OpenSSL's socket BIO does the same with read() and write();
// this one reads with receive(), so a ready read knows whether OpenSSL's read emptied it.
int socket_bio_read(BIO* bio, char* into, std::size_t size, std::size_t* got) {
  auto& s = *static_cast<tls_socket_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto n = receive(s.fd, into, size, s.left);
  if (n > 0) {
    *got = static_cast<std::size_t>(n);
    return 1;
  }
  if (n == 0)
    s.eof = true;
  else if (errno == EAGAIN || errno == EWOULDBLOCK)
    BIO_set_retry_read(bio);
  return 0;
}

int socket_bio_write(BIO* bio, const char* from, std::size_t size, std::size_t* sent) {
  auto& s = *static_cast<tls_socket_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n = 0;
  do
    n = ::send(s.fd, from, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    *sent = static_cast<std::size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    BIO_set_retry_write(bio);
  return 0;
}

long socket_bio_ctrl(BIO* bio, int command, long, void* out) {
  const auto& s = *static_cast<tls_socket_state*>(BIO_get_data(bio));
  switch (command) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_EOF: // OpenSSL tells a close without close_notify by it
    return s.eof ? 1 : 0;
  case BIO_C_GET_FD:
    if (out != nullptr)
      *static_cast<int*>(out) = s.fd;
    return s.fd;
  default:
    return 0;
  }
}

BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "tokengate socket");
    if (m != nullptr) {
      BIO_meth_set_read_ex(m, socket_bio_read);
      BIO_meth_set_write_ex(m, socket_bio_write);
      BIO_meth_set_ctrl(m, socket_bio_ctrl);
    }
    return m;
  }();
  return method;
}

/// Whether a read that epoll's report `events` woke may count as emptying the socket: only a
/// report without a reset or an error in it (the kernel's count of what is left does not count
/// a reset), and never the try as an operation starts (no report then).
bool may_empty(std::uint32_t events) noexcept {
  return events != 0 && (events & (EPOLLERR | EPOLLHUP)) == 0;
}

/// Whether a TLS step woken by `events` took all the socket had: done without an error, its
/// last read of the socket left nothing, and OpenSSL holds nothing unread.
bool tls_took_all(SSL* ssl, const tls_socket_state& socket, std::uint32_t events,
                  const boost::system::error_code& ec) noexcept {
  return may_empty(events) && !ec && socket.left == 0 && SSL_has_pending(ssl) == 0;
}

/// A ready operation's outcome for a non-blocking read of the socket that took no bytes (`got`
/// 0 or negative, errno as the read left it): done with eof or the error, or 0 (wait on) when
/// nothing had come.
int took_nothing(ssize_t got, boost::system::error_code& ec) noexcept {
  constexpr int nothing = 0, done = 1;
  if (got == 0) {
    ec = net::error::eof;
    return done;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return nothing;
  ec = boost::system::error_code(errno, boost::system::system_category());
  return done;
}

} // namespace

int flex_stream::try_ready(ready_step step, read_target target, std::uint32_t events,
                           boost::system::error_code& ec, std::size_t& n) noexcept {
  switch (step) {
  case ready_step::read:
    break;
  case ready_step::handshake:
    return try_ready_handshake(events, ec);
  case ready_step::peek:
    return try_ready_peek(target.into, ec, n);
  }
  return try_ready_read(target, events, ec, n);
}

int flex_stream::try_ready_handshake(std::uint32_t events, boost::system::error_code& ec) noexcept {
  constexpr int nothing = 0, done = 1, emptied = 2;
  if (ERR_peek_error() != 0) // OpenSSL classifies a failure by its queue: only this call's
    ERR_clear_error();
  tls_socket_.left = -1;
  errno = 0;
  const int ret = SSL_do_handshake(ssl_.get());
  switch (settle(ssl_.get(), ret, errno, ec)) {
  case tls_next::read:
    return nothing;
  case tls_next::write: // its flight did not fit in the send buffer
    tls_wants_write_ = true;
    return done;
  case tls_next::done:
    break;
  }
  // As a read's: a handshake woken by epoll whose last read emptied the socket lets the
  // client's first request be waited for without a try.
  return tls_took_all(ssl_.get(), tls_socket_, events, ec) ? emptied : done;
}

int flex_stream::try_ready_peek(net::mutable_buffer into, boost::system::error_code& ec,
                                std::size_t& n) noexcept {
  constexpr int done = 1;
  ssize_t got = 0;
  do
    got = ::recv(socket_.native_handle(), into.data(), into.size(), MSG_PEEK | MSG_DONTWAIT);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    return took_nothing(got, ec);
  n = static_cast<std::size_t>(got);
  return done;
}

int flex_stream::try_ready_read(read_target target, std::uint32_t events,
                                boost::system::error_code& ec, std::size_t& n) noexcept {
  constexpr int nothing = 0, done = 1, emptied = 2;
  const int fd = socket_.native_handle();
  if (events == 0 && target.take != nullptr) {
    // The reactor tries at once only when the socket has had an event since a read emptied it
    // (or none did): a look for bytes or a close that takes no buffer yet.
    char probe = 0;
    ssize_t got = 0;
    do
      got = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return nothing;
      // The look took the socket's error (a reset): it is the read's outcome.
      ec = boost::system::error_code(errno, boost::system::system_category());
      return done;
    }
    if (got == 0 && ssl_ == nullptr) {
      ec = net::error::eof;
      return done;
    }
  }
  net::mutable_buffer into;
  try {
    into = target.get();
  } catch (const std::bad_alloc&) {
    ec = net::error::no_memory;
    return done;
  }
  if (into.size() == 0)
    return done; // as Asio's reads: nothing asked, nothing read
  if (ssl_ == nullptr) {
    int left = -1;
    const auto got = receive(fd, into.data(), into.size(), left);
    if (got <= 0)
      return took_nothing(got, ec);
    n = static_cast<std::size_t>(got);
    return may_empty(events) && left == 0 ? emptied : done;
  }
  if (ERR_peek_error() != 0)
    ERR_clear_error();
  tls_socket_.left = -1; // set by OpenSSL's read of the socket, if it makes one
  errno = 0;
  std::size_t got = 0;
  const int ret = SSL_read_ex(ssl_.get(), into.data(), into.size(), &got);
  switch (settle(ssl_.get(), ret, errno, ec)) {
  case tls_next::read:
    return nothing;
  case tls_next::write: // rare (a key update to answer while the send buffer is full)
    tls_target_ = into;
    tls_wants_write_ = true;
    return done;
  case tls_next::done:
    break;
  }
  n = got;
  return tls_took_all(ssl_.get(), tls_socket_, events, ec) ? emptied : done;
}

// Not a coroutine for a plain read: the operation is awaited as it is, without a frame of its
// own per read. A TLS read may have to go on as tls_read_some (OpenSSL asked to write).
net::awaitable<io_outcome> flex_stream::read_ready(read_target target) {
  // What OpenSSL holds already is read at once: the socket may have no more to wake a wait.
  if (tls_buffered())
    return tls_read_some(target.get());
#if TOKENGATE_READY_READ
  if (ssl_ == nullptr) // a closed socket: the operation ends with bad_descriptor
    return net::async_initiate<decltype(nothrow), void(boost::system::error_code, std::size_t)>(
        initiate_ready_read{}, nothrow, this, ready_step::read, target);
#endif
  return tls_read_ready(target);
}

net::awaitable<io_outcome> flex_stream::tls_read_ready(read_target target) {
#if TOKENGATE_READY_READ
  if (!socket_.is_open())
    co_return io_outcome{net::error::bad_descriptor, 0};
  auto got =
      co_await net::async_initiate<decltype(nothrow), void(boost::system::error_code, std::size_t)>(
          initiate_ready_read{}, nothrow, this, ready_step::read, target);
  if (!std::exchange(tls_wants_write_, false))
    co_return got;
  co_return co_await tls_read_some(tls_target_);
#else
  if (auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, nothrow); ec)
    co_return io_outcome{ec, 0};
  const auto into = target.get();
  if (ssl_ != nullptr)
    co_return co_await tls_read_some(into);
  co_return co_await socket_.async_read_some(into, nothrow);
#endif
}

void flex_stream::read_ready(
    read_target target, std::function<void(const boost::system::error_code&, std::size_t)> done) {
  assert(ssl_ == nullptr); // OpenSSL's wish to write would need a coroutine to meet
#if TOKENGATE_READY_READ
  net::async_initiate<decltype(done), void(boost::system::error_code, std::size_t)>(
      initiate_ready_read{}, done, this, ready_step::read, target);
#else
  socket_.async_read_some(target.get(), std::move(done));
#endif
}

void report_unread_bytes(int fd) noexcept {
  const int on = 1;
  (void)::setsockopt(fd, SOL_TCP, TCP_INQ, &on, sizeof on);
}

bool flex_stream::nothing_arrived() noexcept {
  char probe = 0;
  const auto n = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool flex_stream::all_delivered() noexcept {
  int queued = 0;
  return ::ioctl(socket_.native_handle(), SIOCOUTQ, &queued) == 0 && queued == 0;
}

io_outcome flex_stream::read_now(net::mutable_buffer into) noexcept {
  const auto n = ::recv(socket_.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
  if (n > 0)
    return {boost::system::error_code(), static_cast<std::size_t>(n)};
  if (n == 0)
    return {net::error::eof, 0};
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
    return {boost::system::error_code(), 0};
  return {boost::system::error_code(errno, boost::system::system_category()), 0};
}

bool flex_stream::write_now(std::string_view bytes) noexcept {
  if (!socket_.is_open())
    return false;
  if (ssl_ == nullptr)
    return ::send(socket_.native_handle(), bytes.data(), bytes.size(),
                  MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  ERR_clear_error();
  std::size_t sent = 0;
  const bool whole = SSL_is_init_finished(ssl_.get()) == 1 &&
                     SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &sent) == 1 &&
                     sent == bytes.size();
  ERR_clear_error();
  return whole;
}

bool flex_stream::start_tls(net::ssl::context& context, tls_role role) {
  boost::system::error_code ec;
  if (!socket_.non_blocking())
    socket_.non_blocking(true, ec);
  std::unique_ptr<SSL, ssl_free> ssl(SSL_new(context.native_handle()));
  BIO* bio = ssl && socket_bio_method() != nullptr ? BIO_new(socket_bio_method()) : nullptr;
  if (ec || !bio) {
    BIO_free(bio);
    ERR_clear_error();
    return false;
  }
  tls_socket_ = {socket_.native_handle(), -1, false};
  BIO_set_data(bio, &tls_socket_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl.get(), bio, bio); // the session owns the BIO
  // Take what the socket has in one read, not a record header and then its body.
  SSL_set_read_ahead(ssl.get(), 1);
  if (role == tls_role::server)
    SSL_set_accept_state(ssl.get());
  else
    SSL_set_connect_state(ssl.get());
  ssl_ = std::move(ssl);
  return true;
}

template <class Step> net::awaitable<io_outcome> flex_stream::drive(Step step) {
  for (;;) {
    if (!socket_.is_open())
      co_return io_outcome{net::error::bad_descriptor, 0};
    // OpenSSL reads its error queue to classify a failure: it must hold only this call's.
    // Every failure below clears it, so there is rarely anything to clear.
    if (ERR_peek_error() != 0)
      ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int ret = step(ssl_.get(), n);
    boost::system::error_code ec;
    const auto next = settle(ssl_.get(), ret, errno, ec);
    if (next == tls_next::done)
      co_return io_outcome{ec, n};
    const auto wait = next == tls_next::read ? tcp::socket::wait_read : tcp::socket::wait_write;
    if (auto [waited] = co_await socket_.async_wait(wait, nothrow); waited)
      co_return io_outcome{waited, 0};
  }
}

net::awaitable<boost::system::error_code> flex_stream::handshake() {
#if TOKENGATE_READY_READ
  // Each step is tried as the wait starts and again at each event, as a ready read is: the
  // socket is not re-armed in epoll for every flight of the peer's.
  for (;;) {
    if (!socket_.is_open())
      co_return net::error::bad_descriptor;
    auto [ec, n] = co_await net::async_initiate<decltype(nothrow),
                                                void(boost::system::error_code, std::size_t)>(
        initiate_ready_read{}, nothrow, this, ready_step::handshake, read_target{});
    if (ec || !std::exchange(tls_wants_write_, false))
      co_return ec;
    if (auto [waited] = co_await socket_.async_wait(tcp::socket::wait_write, nothrow); waited)
      co_return waited;
  }
#else
  auto [ec, n] = co_await drive([](SSL* s, std::size_t&) { return SSL_do_handshake(s); });
  co_return ec;
#endif
}

net::awaitable<io_outcome> flex_stream::peek_ready(net::mutable_buffer into) {
  if (!socket_.is_open())
    co_return io_outcome{net::error::bad_descriptor, 0};
#if TOKENGATE_READY_READ
  // A client's first bytes have most often come with its connection. Looked for here, they are
  // taken in this turn of the loop; found by the operation's own try as it starts, they would
  // be handed over a turn later, behind all the loop's other work (Asio queues an operation
  // that completes as it starts). Found nothing: the operation waits without a second try.
  boost::system::error_code ec;
  std::size_t n = 0;
  if (try_ready_peek(into, ec, n) != 0)
    co_return io_outcome{ec, n};
  skip_starting_try_ = true;
  co_return co_await net::async_initiate<decltype(nothrow),
                                         void(boost::system::error_code, std::size_t)>(
      initiate_ready_read{}, nothrow, this, ready_step::peek, read_target{.into = into});
#else
  for (;;) {
    if (auto [waited] = co_await socket_.async_wait(tcp::socket::wait_read, nothrow); waited)
      co_return io_outcome{waited, 0};
    boost::system::error_code ec;
    std::size_t n = 0;
    if (try_ready_peek(into, ec, n) != 0)
      co_return io_outcome{ec, n};
  }
#endif
}

// Not a coroutine: the read is drive()'s own frame, one per read.
net::awaitable<io_outcome> flex_stream::tls_read_some(net::mutable_buffer into) {
  return drive(
      [into](SSL* s, std::size_t& n) { return SSL_read_ex(s, into.data(), into.size(), &n); });
}

namespace {

/// Writes pieces in order, one SSL_write_ex each, resuming where a wait interrupted it: the
/// piece being written is passed again unchanged, as OpenSSL requires after WANT_WRITE.
/// Without partial writes, SSL_write_ex succeeds only once all of a piece is sent.
struct piece_writer {
  std::array<net::const_buffer, 4> pieces{};
  std::size_t count = 0;
  std::size_t next = 0;
  std::size_t written = 0;

  int operator()(SSL* s, std::size_t& n) {
    for (; next < count; ++next) {
      std::size_t sent = 0;
      if (SSL_write_ex(s, pieces[next].data(), pieces[next].size(), &sent) != 1) {
        n = written;
        return 0;
      }
      written += sent;
    }
    n = written;
    return 1;
  }
};

} // namespace

net::awaitable<io_outcome> flex_stream::tls_write(std::span<const net::const_buffer> buffers) {
  // A head and a small body go out as one record, as a plain write takes both in one syscall.
  piece_writer writer;
  bool gathered = false;
  for (std::size_t i = 0; i < buffers.size();) {
    net::const_buffer out = buffers[i++];
    if (!gathered && i < buffers.size() && out.size() + buffers[i].size() <= max_gather) {
      gather_.assign(static_cast<const char*>(out.data()), out.size());
      for (; i < buffers.size() && gather_.size() + buffers[i].size() <= max_gather; ++i)
        gather_.append(static_cast<const char*>(buffers[i].data()), buffers[i].size());
      out = net::buffer(gather_);
      gathered = true;
    }
    if (out.size() != 0)
      writer.pieces.at(writer.count++) = out; // at most four: the caller's contract
  }
  return drive(writer);
}

net::awaitable<boost::system::error_code> flex_stream::tls_shutdown(bool wait_for_peer) {
  bool notified = false; // our close_notify is out
  auto [ec, n] = co_await drive([&notified, wait_for_peer](SSL* s, std::size_t&) {
    if (!notified) {
      // 0: close_notify went out and the peer's has not come; -1: it is still to be written.
      const int sent = SSL_shutdown(s);
      if (sent < 0)
        return sent;
      notified = true;
      if (sent == 1 || !wait_for_peer)
        return 1;
    }
    return SSL_shutdown(s); // reads until the peer's close_notify, or its close
  });
  // A peer that closes without close_notify makes OpenSSL 3.0 (SSL_OP_IGNORE_UNEXPECTED_EOF)
  // set the connection's shutdown state to "received" alone, forgetting that ours was sent.
  // SSL_free would then take the connection for one cut short and drop its session from the
  // cache, and the client's next connection could not resume it. Ours did go out.
  if (notified)
    SSL_set_shutdown(ssl_.get(), SSL_get_shutdown(ssl_.get()) | SSL_SENT_SHUTDOWN);
  co_return ec;
}

void flex_stream::close_idle() noexcept {
  SSL* s = ssl_.get();
  if (s != nullptr && socket_.is_open() && SSL_is_init_finished(s) == 1 &&
      (SSL_get_shutdown(s) & SSL_SENT_SHUTDOWN) == 0) {
    ERR_clear_error();
    // One non-blocking attempt: an idle connection's send buffer is empty, so the alert goes
    // out; if it cannot, the close goes on without it. A connection in a fatal error state
    // refuses the call.
    (void)SSL_shutdown(s);
    ERR_clear_error();
  }
  close();
}

} // namespace tokengate::proxy::detail
