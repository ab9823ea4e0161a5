#include "proxy/detail/upstream_pool.hpp"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace tokengate::proxy::detail {
namespace {

// True when OpenSSL holds bytes beyond the answer just read (it reads ahead): data, the
// stream's end, or part of a record. Records that carry no data (a TLS 1.3 session ticket, a
// key update) are taken in here, and leave the connection usable.
bool tls_leftover(SSL* ssl) {
  if (SSL_has_pending(ssl) != 1)
    return false;
  ERR_clear_error();
  char probe = 0;
  std::size_t n = 0;
  const int peeked = SSL_peek_ex(ssl, &probe, 1, &n);
  const bool leftover =
      peeked == 1 || SSL_get_error(ssl, peeked) != SSL_ERROR_WANT_READ || SSL_has_pending(ssl) == 1;
  ERR_clear_error();
  return leftover;
}

// Whether an idle connection can take a request: nothing ended its watch (or, over TLS, the
// peek finds nothing).
bool still_open(upstream_connection& c) {
  if (c.watch)
    return !c.watch->ended;
  return c.stream.nothing_arrived();
}

} // namespace

void idle_watch::end(const boost::system::error_code& ec, std::size_t n) {
  if (!waiter) {
    ended.emplace(ec, n);
    if (pooled != nullptr)
      std::exchange(pooled, nullptr)->close_now();
    return;
  }
  auto handler = std::move(*waiter);
  waiter.reset();
  std::move(handler)(ec, n);
}

net::awaitable<io_outcome> upstream_connection::take_watch() {
  auto taken = std::move(watch);
  return net::async_initiate<decltype(nothrow), void(boost::system::error_code, std::size_t)>(
      [taken = std::move(taken), ex = stream.get_executor()](auto handler) {
        if (!taken->ended) {
          taken->waiter.emplace(std::move(handler));
          return;
        }
        // It ended between the take and now (the write waited for the socket): the upstream
        // answered early, or closed.
        const auto [ec, n] = *taken->ended;
        net::post(ex,
                  [handler = std::move(handler), ec, n]() mutable { std::move(handler)(ec, n); });
      },
      nothrow);
}

upstream_pool::upstream_pool(net::io_context& io, std::size_t max_idle,
                             std::chrono::milliseconds max_idle_time)
    : io_(io), max_idle_(max_idle), max_idle_time_(max_idle_time) {}

std::unique_ptr<upstream_connection> upstream_pool::take() {
  const auto now = coarse_now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (c->watch) // out of the pool: an end of its watch is the taker's to read
      c->watch->pooled = nullptr;
    if (now - c->idle_since < max_idle_time_ && still_open(*c))
      return c;
    c->stream.close_idle();
  }
  return nullptr;
}

upstream_pool::~upstream_pool() {
  close_all();
  if (tls_session_)
    SSL_SESSION_free(tls_session_);
}

// Copies, not shared objects: OpenSSL marks a connection's session unresumable when that
// connection fails, which a pooled connection the upstream closed will.
void upstream_pool::keep_session(SSL* tls, const std::shared_ptr<net::ssl::context>& context) {
  const SSL_SESSION* s = SSL_get0_session(tls);
  if (s == nullptr || SSL_SESSION_is_resumable(s) != 1)
    return;
  if (tls_session_)
    SSL_SESSION_free(tls_session_);
  tls_session_ = SSL_SESSION_dup(s);
  if (session_context_ != context) // after a reload only: no reference count churn otherwise
    session_context_ = context;
}

void upstream_pool::offer_session(SSL* tls, const net::ssl::context* context) {
  if (tls_session_ != nullptr && session_context_.get() != context) {
    SSL_SESSION_free(tls_session_);
    tls_session_ = nullptr;
    session_context_.reset();
  }
  if (tls_session_ == nullptr)
    return;
  if (SSL_SESSION* copy = SSL_SESSION_dup(tls_session_)) {
    SSL_set_session(tls, copy);
    SSL_SESSION_free(copy);
  }
}

std::unique_ptr<upstream_connection> upstream_pool::make() {
  return std::make_unique<upstream_connection>(io_.get_executor());
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> c) {
  // Bytes after a whole answer are no answer to a later request. Over TLS they may wait in
  // OpenSSL's buffer (it reads ahead), where the socket check of `take` cannot see them.
  // (A watch nobody took up means no answer was read: the connection's state is unknown.)
  const bool stray = !c->buffer.empty() || !c->stream.socket().is_open() || c->watch ||
                     (c->stream.is_tls() && tls_leftover(c->stream.tls()));
  if (stray) {
    c->stream.close_idle();
    return;
  }
  if (idle_.size() >= max_idle_) {
    // Room from connections closed or expired in the pool, else from the least recently used
    // one (as nginx's keepalive cache): the warmest is kept.
    close_expired(coarse_now());
    if (idle_.size() >= max_idle_) {
      idle_.front()->stream.close_idle();
      idle_.erase(idle_.begin());
    }
  }
  c->buffer.shrink(64 * 1024);
  if (!c->stream.is_tls()) {
    if (steady::now() - c->read_at > settled_read && !nothing_came(*c)) {
      c->stream.close_idle();
      return;
    }
    watch(*c);
  }
  c->idle_since = coarse_now();
  idle_.push_back(std::move(c));
}

// The watch's first try hands what it finds over in a later turn of the loop, where a request
// that takes the connection in this turn would not see it. The answer's last read took all that
// had come (past_end::take), so that can only be what came since; when that is more than a
// moment (the answer's end went to a slow client), it is looked for here, at the cost of one
// system call.
bool upstream_pool::nothing_came(upstream_connection& c) {
  const auto into = c.buffer.prepare(1);
  const auto [ec, n] = c.stream.read_now(net::buffer(into.data(), into.size()));
  return !ec && n == 0;
}

// The read is a ready read (flex_stream::read_ready): when the answer's last read emptied the
// socket, it waits for the event loop's word at no cost; else it first tries at once (the one
// system call the watch then costs). Bytes that came within `settled_read` of the answer's last
// read (give_back looks for any later ones first) end the watch in a later turn of the loop,
// so a request that takes the connection in this one could read them as its answer, as it
// could bytes that arrive just after a peek. The callback form reads plain connections only.
void upstream_pool::watch(upstream_connection& c) {
  const auto into = c.buffer.prepare(upstream_read_chunk);
  auto w = std::make_shared<idle_watch>();
  w->pooled = &c;
  c.watch = w;
  c.stream.read_ready(
      {.into = net::buffer(into.data(), upstream_read_chunk)},
      [w = std::move(w)](const boost::system::error_code& ec, std::size_t n) { w->end(ec, n); });
}

void upstream_pool::close_all() noexcept {
  for (auto& c : idle_)
    c->stream.close_idle();
  idle_.clear();
}

// give_back appends and take pops from the back: the oldest connections are at the front.
void upstream_pool::close_expired(steady::time_point now) noexcept {
  const auto fresh = std::find_if(idle_.begin(), idle_.end(), [&](const auto& c) {
    return now - c->idle_since < max_idle_time_;
  });
  for (auto it = idle_.begin(); it != fresh; ++it)
    (*it)->stream.close_idle();
  idle_.erase(idle_.begin(), fresh);
  drop_ended();
}

void upstream_pool::drop_ended() noexcept {
  std::erase_if(idle_, [](const auto& c) { return c->watch && c->watch->ended; });
}

} // namespace tokengate::proxy::detail
