#include "proxy/detail/session.hpp"

#include "proxy/admission.hpp"
#include "proxy/answer.hpp"
#include "proxy/client_address.hpp"

#include <array>
#include <limits>
#include <utility>

namespace tokengate::proxy::detail {
namespace {

using tokenapi::api_response;

constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t max_linger_bytes = 1 << 20;

/// Publishes when the oldest handshake under way on `w` started, after a change to the list.
void publish_oldest_handshake(worker& w) {
  w.oldest_handshake.store(w.handshakes.empty()
                               ? std::numeric_limits<steady::rep>::max()
                               : w.handshakes.front()->handshake_since().time_since_epoch().count(),
                           std::memory_order_relaxed);
}

} // namespace

tokenapi::ip_address address_of(const tcp::endpoint& e) {
  const auto a = e.address();
  return a.is_v4() ? tokenapi::ip_address::v4(a.to_v4().to_bytes())
                   : tokenapi::ip_address::v6(a.to_v6().to_bytes());
}

net::awaitable<void> session::run() {
  auto self = shared_from_this();
  if (w_.live.empty())
    w_.sweep_timer.cancel(); // the sweeper of an idle loop waits for this connection
  w_.live.insert(this);      // live_count was counted when the connection was given to this loop
  try {
    // A plain listener makes no TLS step (and no coroutine frame for one).
    const bool tls = (admin_ ? shared_.admin_tls : shared_.tls) != nullptr;
    if (!tls || co_await start_tls())
      co_await serve();
    co_await linger();
  } catch (const std::exception& e) {
    deps_.log.event(log_level::error, "connection failed",
                    [&](json_line& l) { l.add("error", e.what()); });
  }
  close();
  if (handshake_) {
    w_.handshakes.erase(*handshake_);
    publish_oldest_handshake(w_);
  }
  w_.live.erase(this);
  w_.live_count.fetch_sub(1);
  (admin_ ? shared_.admin_connections : shared_.connections).fetch_sub(1);
}

void session::drain() {
  if (idle_)
    client_.cancel();
}

void session::evict() {
  evicted_ = true;
  client_.cancel(); // a wait for a request ends; read_head() sees evicted_ before the next
}

void session::give_up_handshake() {
  w_.handshakes.erase(*handshake_);
  publish_oldest_handshake(w_);
  handshake_.reset();
  gave_up_handshake_ = true;
  client_.cancel();
}

void session::expire_if_due(steady::time_point now) {
  if (!deadline_.expire_if_due(now))
    return;
  client_.cancel();
  upstream_.cancel();
}

void session::cut() {
  if (in_request_)
    record_.cut = "shutdown";
  deadline_.cut();
  client_.cancel();
  upstream_.cancel();
}

void session::log_unfinished() {
  if (!in_request_)
    return;
  record_.cut = "shutdown";
  // A call still waiting for the token API's thread has written nothing since its request was
  // read (its 100 Continue at most): the 503, if the socket takes it at once, and the close.
  if (awaiting_api_ && record_.status == 0) {
    build_error_response(out_, 503, shutdown_message, true, {}, key_fields_);
    const auto bytes = method_ == "HEAD" ? head_only(out_) : std::string_view(out_);
    if (client_.write_now(bytes)) {
      record_.status = 503;
      record_.bytes_out += bytes.size();
    }
    client_.close_idle();
  }
  log_access(true);
}

void session::take_live_settings() {
  logging_ = deps_.log.enabled(log_level::info);
  if (live_ == w_.settings)
    return;
  live_ = w_.settings;
  peer_trusted_ = false;
  for (const auto& b : live_->trusted_proxies)
    peer_trusted_ = peer_trusted_ || b.contains(peer_);
  upstream_.use_limits(live_->limits);
}

net::awaitable<void> session::serve() {
  for (bool first = true;; first = false) {
    take_live_settings(); // the limits of the wait for a head
    if (!co_await read_head(first))
      co_return;
    // A reload while the connection waited applies to the request that ended the wait.
    take_live_settings();
    // The head's views stay valid until the next read into in_; nothing uses them after.
    in_.consume(head_.size);
    begin_record(head_.method);
    // A keep-alive connection does not outlive the client certificate it was opened with.
    const bool expired = client_certificate_end_ != 0 &&
                         deps_.clock.now().time_since_epoch().count() >= client_certificate_end_;
    // (Plain ifs: GCC 12 miscompiles a co_await in a nested conditional expression.)
    bool keep = false;
    if (deadline_.shutdown) // a head read as the cut ran: not sent on
      keep = co_await answer(503, shutdown_message, true);
    else if (expired)
      keep = co_await answer(401, expired_certificate_message, true);
    else if (admin_)
      keep = co_await serve_admin();
    else
      keep = co_await serve_request();
    log_access();
    if (!keep || draining())
      co_return;
    in_.shrink(read_chunk);
  }
}

net::awaitable<bool> session::start_tls() {
  auto* certificates = admin_ ? shared_.admin_tls.get() : shared_.tls.get();
  take_live_settings(); // the limits, for the handshake and a refusal
  deadline_.expire_after(header_timeout());
  unsigned char first = 0;
  if (auto [ec, n] = co_await client_.peek_ready(net::buffer(&first, 1)); ec || n != 1)
    co_return false;
  // A TLS connection opens with a handshake record (content type 22); anything else is plain.
  if (first != 0x16)
    co_return co_await refuse({400, "this port expects TLS: use https://"});
  // The main listener's handshakes under way are capped: each holds a TLS layer's buffers for
  // an unknown client. At the cap, the oldest one under way on this loop gives its place up if
  // it has taken a second or more (handshake_give_up_after): a client completes its handshake
  // in a few round trips, and one that stalled would hold its place until header_timeout_ms,
  // so half-open handshakes cannot keep new clients out. The admin listener's are not counted:
  // its own 64 connections bound them, and the main port must not keep a probe out of it.
  const bool counted = !admin_;
  if (counted && shared_.tls_handshakes.fetch_add(1) >= limits().max_tls_handshakes &&
      !give_up_oldest_handshake(w_)) {
    shared_.tls_handshakes.fetch_sub(1);
    deps_.log.event(log_level::debug, "TLS handshake refused: too many under way",
                    [&](json_line& l) { l.add("client", peer_text_); });
    co_return false;
  }
  if (counted) {
    handshake_since_ = coarse_now();
    handshake_ = w_.handshakes.insert(w_.handshakes.end(), this);
    publish_oldest_handshake(w_);
  }
  tls_context_ = certificates->current();
  boost::system::error_code ec = net::error::no_memory;
  if (client_.start_tls(*tls_context_, tls_role::server))
    ec = co_await client_.handshake();
  if (counted) {
    if (handshake_) {
      w_.handshakes.erase(*std::exchange(handshake_, std::nullopt));
      publish_oldest_handshake(w_);
    }
    shared_.tls_handshakes.fetch_sub(1);
  }
  if (ec) {
    deps_.log.event(log_level::debug,
                    gave_up_handshake_ ? "TLS handshake ended to make room for a new one"
                                       : "TLS handshake failed",
                    [&](json_line& l) { l.add("client", peer_text_).add("error", ec.message()); });
    co_return false;
  }
  tls_up_ = true;
  client_certificate_ = client_identity(client_.tls());
  client_certificate_end_ = client_certificate_end(client_.tls());
  co_return true;
}

net::awaitable<bool> session::read_head(bool first) {
  std::size_t scanned = 0;
  skip_empty_lines();
  idle_ = between_requests();
  if (idle_)
    idle_since_ = coarse_now();
  // header_timeout_ms runs once per head, from its first byte (or the connection's start).
  // Over TLS the first head's clock is the handshake's, started as the connection opened:
  // starting it again here would give a client that stalls its handshake a second
  // header_timeout_ms to hold the connection without a request.
  bool head_clock = first || !idle_;
  if (!(first && tls_up_))
    deadline_.expire_after(head_clock ? header_timeout() : limits().idle_timeout);
  for (;;) {
    if (!idle_) {
      const auto size = http1::scan_head(in_.data(), scanned);
      if (!size)
        co_return co_await refuse(http1::refusal_for(size.error()));
      if (*size > limits().max_header_bytes ||
          (*size == 0 && in_.size() > limits().max_header_bytes))
        co_return co_await refuse({431, "request header is larger than the limit"});
      if (*size != 0) {
        const auto parsed = http1::parse_request(in_.data().substr(0, *size), head_);
        if (!parsed)
          co_return co_await refuse(http1::refusal_for(parsed.error()));
        co_return true;
      }
    }
    if (idle_ && (draining() || evicted_))
      co_return false;
    io_outcome got;
    if (idle_ && !first && !client_.tls_buffered()) {
      // Between requests the read buffer goes back until the next request has arrived, so an
      // idle keep-alive connection holds none (nginx frees its header buffer the same way).
      // Waiting first also spares a read that would find nothing: the answer just went out,
      // so the next request is rarely there yet.
      in_.shrink(0);
      // A drain while it waits cancels the wait; a request that ends it first is served.
      // Bytes came when the buffer is taken: over TLS the next head has begun, even while its
      // record is still incomplete (and a record of empty lines does not start the clock again).
      struct taker {
        session* self;
        bool* head_clock;
      } take_for{this, &head_clock};
      got = co_await client_.read_ready(
          {.take =
               [](void* p) {
                 auto& t = *static_cast<taker*>(p);
                 if (t.self->tls_up_ && !std::exchange(*t.head_clock, true))
                   t.self->deadline_.expire_after(t.self->header_timeout());
                 return net::buffer(t.self->in_.prepare(read_chunk).data(), read_chunk);
               },
           .self = &take_for});
    } else {
      got = co_await client_.read_ready(
          {.into = net::buffer(in_.prepare(read_chunk).data(), read_chunk)});
    }
    const auto [ec, n] = got;
    if (ec) {
      head_abandoned_ = true;
      co_return false;
    }
    in_.commit(n);
    if (idle_) {
      skip_empty_lines();
      idle_ = between_requests();
      if (!idle_ && !std::exchange(head_clock, true))
        deadline_.expire_after(header_timeout());
    }
  }
}

// RFC 9112 section 2.2: a server should ignore empty lines before a request line.
void session::skip_empty_lines() {
  while (in_.data().starts_with("\r\n"))
    in_.consume(2);
}

bool session::between_requests() const {
  // A lone CR is the start of an empty line whose LF is still on its way.
  return in_.empty() || in_.data() == "\r";
}

net::awaitable<bool> session::refuse(http1::refusal why) {
  // A head refused before it was parsed whole still named its method when its request line
  // came: an answer to HEAD has no body (README "Headers sent upstream"), tokengate's own
  // refusals included.
  begin_record(in_.data().starts_with("HEAD ") ? std::string_view("HEAD") : std::string_view{});
  co_await answer(why.status, why.message, true);
  log_access();
  co_return false;
}

bool session::client_quiet() {
  return bodyless_ && in_.empty() && !client_.tls_buffered() && client_.nothing_arrived();
}

net::awaitable<void> session::linger() {
  // A client that sent nothing past its last request (which had no body) has nothing in flight
  // that a close could answer with a reset before it reads the answer: the connection closes
  // at once, as nginx closes it. So does one whose next head never came whole, once nothing of
  // its answers waits in the send queue and no byte of it is unread: a reset could take
  // nothing from it then. Otherwise what it still sends is read and dropped for a while.
  const bool quiet = client_quiet() || (head_abandoned_ && client_.nothing_arrived() &&
                                        !client_.tls_buffered() && client_.all_delivered());
  if (client_.is_tls()) {
    // TLS says it is over with close_notify; the peer's answer (or its close) ends the wait.
    // An answer that broke off ends without one: a client whose body ends with the connection
    // (HTTP/1.0) must not take the part it got for the whole.
    if (!tls_up_ || cut_short_)
      co_return;
    deadline_.expire_after(linger_time);
    const auto e = co_await client_.tls_shutdown(!quiet);
    if (quiet)
      co_return;
    // Request bytes the client still sends (a refused body) fail the shutdown: they are
    // dropped below, encrypted as they are, so that the close does not reset the connection
    // before the client has read the answer.
    if (!e || deadline_.timed_out)
      co_return;
  }
  if (quiet)
    co_return;
  boost::system::error_code ec;
  client_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec)
    co_return;
  deadline_.expire_after(linger_time);
  std::array<char, 4096> sink;
  for (std::size_t dropped = 0; dropped < max_linger_bytes;) {
    auto [e, n] = co_await client_.socket().async_read_some(net::buffer(sink), nothrow);
    if (e)
      co_return;
    dropped += n;
  }
}

// close() alone sends the FIN after what is still queued (a reset instead if the client's bytes
// were left unread, as a shutdown() before it would not change).
void session::close() {
  client_.close();
  upstream_.finish(false);
}

net::awaitable<bool> session::answer(unsigned status, std::string_view message, bool close,
                                     std::string_view allow) {
  // Whatever the cut made a wait fail with, the client is told why.
  if (deadline_.shutdown) {
    status = 503;
    message = shutdown_message;
    close = true;
  }
  record_.status = status;
  build_error_response(out_, status, message, close, allow, key_fields_);
  co_return co_await write_answer(close);
}

net::awaitable<bool> session::answer_json(const api_response& r, bool close) {
  record_.status = r.status;
  build_json_response(out_, r.status, r.body, close, r.allow, key_fields_);
  co_return co_await write_answer(close);
}

net::awaitable<bool> session::write_answer(bool close) {
  const auto bytes = record_.method == "HEAD" ? head_only(out_) : std::string_view(out_);
  const auto written = co_await client_stream().write(bytes);
  co_return written && !close;
}

net::awaitable<bool> session::serve_request() {
  keep_alive_ = false;
  body_ = {};
  auto admission = admit_request(head_, target_);
  if (!admission)
    co_return co_await answer(admission.error().status, admission.error().message, true);
  record_.path = target_.path;
  body_ = admission->body;
  bodyless_ = body_.type == http1::framing::kind::none;
  key_ = admission->key;
  keep_alive_ = admission->keep_alive;
  want_continue_ = admission->want_continue;
  client_address_ = client_address(peer_, head_, live_->trusted_proxies);
  if (tokenapi::api_handler::is_api_path(target_.path))
    co_return co_await serve_api();
  co_return co_await serve_proxy();
}

void session::begin_record(std::string_view method) {
  method_.assign(method);
  record_ = {};
  record_.method = method_;
  record_.admin = admin_;
  bodyless_ = false; // until the request's framing says so
  started_ = steady::now();
  in_request_ = true;
  if (deadline_.shutdown)
    record_.cut = "shutdown";
  token_.reset();
  api_caller_.clear();
  key_fields_.clear();
}

void session::log_access(bool unfinished) {
  in_request_ = false;
  if (record_.status == 0 && !unfinished && record_.cut.empty())
    return;
  const auto took = steady::now() - started_;
  if (record_.status != 0)
    w_.metrics.count_request(admin_ ? listener_kind::admin : listener_kind::main, record_.status,
                             took);
  if (!logging_)
    return;
  record_.token_id = token_ ? token_->id() : std::string_view(api_caller_);
  record_.client = client_address_.to_string();
  record_.duration_ms = std::chrono::duration<double, std::milli>(took).count();
  deps_.log.write(record_.to_line());
}

void start_session(worker& w, tcp::socket socket, const tcp::endpoint& peer, bool admin) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto c = std::make_shared<session>(w, std::move(socket), peer, admin);
  net::co_spawn(
      w.io, [c]() { return c->run(); }, net::detached);
}

void sweep_sessions(worker& w) {
  const auto now = coarse_now();
  for (auto* c : w.live)
    c->expire_if_due(now);
  w.pool.close_expired(now);
}

void drain_sessions(worker& w) {
  for (auto* c : w.live)
    c->drain();
}

void cut_sessions(worker& w) {
  for (auto* c : w.live)
    c->cut();
}

void log_unfinished_sessions(worker& w) {
  for (auto* c : w.live)
    c->log_unfinished();
}

bool give_up_oldest_handshake(worker& w) {
  if (w.handshakes.empty() ||
      coarse_now() - w.handshakes.front()->handshake_since() < handshake_give_up_after)
    return false;
  w.handshakes.front()->give_up_handshake();
  return true;
}

bool evict_idle_admin_session(worker& w) {
  session* oldest = nullptr;
  for (auto* c : w.live)
    if (c->evictable() && (oldest == nullptr || c->idle_since() < oldest->idle_since()))
      oldest = c;
  if (oldest == nullptr)
    return false;
  oldest->evict();
  return true;
}

} // namespace tokengate::proxy::detail
