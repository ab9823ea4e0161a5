// One client connection: read a head, decide, answer or relay, repeat.
//
// Every wait has a deadline kept in `deadline_`; the worker's sweeper cancels the sockets of a
// connection whose deadline has passed. Setting a deadline is a store, never a timer syscall.
#include "proxy/byte_buffer.hpp"
#include "proxy/chunked.hpp"
#include "proxy/client_address.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/http1.hpp"
#include "proxy/path.hpp"
#include "proxy/rewrite.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <span>

namespace tokengate::proxy::detail {
namespace {

using tokenapi::api_request;
using tokenapi::api_response;

constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t relay_chunk = 64 * 1024;
constexpr std::size_t max_response_head = 64 * 1024;
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t max_linger_bytes = 1 << 20;

struct io_result {
  boost::system::error_code ec;
  std::size_t bytes = 0;
  bool timed_out = false;
  explicit operator bool() const noexcept { return !ec; }
};

std::pair<unsigned, std::string_view> refusal_for(http1::head_error e) {
  switch (e) {
  case http1::head_error::bare_lf:
    return {400, "bare LF in request head"};
  case http1::head_error::bad_version:
    return {505, "only HTTP/1.0 and HTTP/1.1 are supported"};
  case http1::head_error::bad_field:
    return {400, "malformed header field"};
  case http1::head_error::space_before_colon:
    return {400, "whitespace before ':' in a header field"};
  case http1::head_error::obsolete_line_folding:
    return {400, "obsolete line folding in a header field"};
  case http1::head_error::too_many_fields:
    return {431, "too many header fields"};
  default:
    return {400, "malformed request line"};
  }
}

std::string_view describe(http1::framing_error e) {
  switch (e) {
  case http1::framing_error::bad_content_length:
    return "invalid Content-Length";
  case http1::framing_error::duplicate_content_length:
    return "more than one Content-Length";
  case http1::framing_error::bad_transfer_encoding:
    return "Transfer-Encoding other than chunked";
  case http1::framing_error::duplicate_transfer_encoding:
    return "more than one Transfer-Encoding";
  case http1::framing_error::transfer_encoding_with_length:
    return "both Transfer-Encoding and Content-Length";
  case http1::framing_error::transfer_encoding_on_http10:
    return "Transfer-Encoding in an HTTP/1.0 request";
  default:
    return "invalid message framing";
  }
}

std::size_t count_fields(const http1::head& h, std::string_view name) {
  std::size_t n = 0;
  for (const auto& f : h.fields)
    n += http1::iequals(f.name, name) ? 1 : 0;
  return n;
}

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

/// Writes what the socket takes at once (the usual case: no reactor round, no handler, no
/// coroutine frame) and returns the rest for `net::async_write`. `s` must be in non-blocking
/// mode. At most four buffers.
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

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

} // namespace

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(worker& w, tcp::socket socket, bool admin)
      : w_(w), shared_(w.shared), deps_(w.shared.deps), limits_(deps_.settings.limits),
        client_(std::move(socket)), admin_(admin) {
    boost::system::error_code ec;
    const auto remote = client_.remote_endpoint(ec);
    if (!ec) {
      const auto a = remote.address();
      peer_ = a.is_v4() ? tokenapi::ip_address::v4(a.to_v4().to_bytes())
                        : tokenapi::ip_address::v6(a.to_v6().to_bytes());
    }
    peer_text_ = peer_.to_string();
    for (const auto& b : deps_.settings.trusted_proxies)
      peer_trusted_ = peer_trusted_ || b.contains(peer_);
    client_address_ = peer_;        // until a request says otherwise, e.g. for refused heads
    client_.non_blocking(true, ec); // for start_write
  }

  net::awaitable<void> run() {
    auto self = shared_from_this();
    w_.live.insert(this);
    w_.live_count.fetch_add(1);
    try {
      co_await serve();
      co_await linger();
    } catch (const std::exception& e) {
      deps_.log.event(log_level::error, "connection failed",
                      [&](json_line& l) { l.add("error", e.what()); });
    }
    close();
    w_.live.erase(this);
    w_.live_count.fetch_sub(1);
    (admin_ ? shared_.admin_connections : shared_.connections).fetch_sub(1);
  }

  /// Closes the connection now when it waits for a request.
  void drain() {
    if (phase_ == phase::idle) {
      boost::system::error_code ignored;
      client_.cancel(ignored);
    }
  }

private:
  enum class phase { idle, head, busy, awaiting_upstream };
  enum class head_status { ok, closed, refused };

  // ---- deadlines -------------------------------------------------------------------------

  void expire_after(steady::duration d) {
    deadline_ = coarse_now() + d;
    timed_out_ = false;
  }

public:
  /// Called by the sweeper: cancels what the connection waits for once its deadline is past.
  void expire_if_due(steady::time_point now) {
    if (now < deadline_)
      return;
    timed_out_ = true;
    deadline_ = steady::time_point::max();
    boost::system::error_code ignored;
    client_.cancel(ignored);
    if (upstream_)
      upstream_->socket.cancel(ignored);
  }

private:
  /// Closes our side, then reads and drops what the client still sends for a moment: closing
  /// with unread bytes would send a reset, which can destroy the answer before it is read.
  net::awaitable<void> linger() {
    boost::system::error_code ec;
    client_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec)
      co_return;
    expire_after(linger_time);
    std::array<char, 4096> sink;
    for (std::size_t dropped = 0; dropped < max_linger_bytes;) {
      auto [e, n] = co_await client_.async_read_some(net::buffer(sink), nothrow);
      if (e)
        co_return;
      dropped += n;
    }
  }

  void close() {
    boost::system::error_code ignored;
    client_.shutdown(tcp::socket::shutdown_send, ignored);
    client_.close(ignored);
    if (upstream_)
      upstream_->socket.close(ignored);
  }

  // ---- socket operations with deadlines --------------------------------------------------

  net::awaitable<io_result> read_client(std::size_t max) {
    expire_after(limits_.idle_timeout);
    auto [ec, n] =
        co_await client_.async_read_some(net::buffer(in_.prepare(max).data(), max), nothrow);
    in_.commit(n);
    co_return io_result{ec, n, ec && timed_out_};
  }

  template <class Buffers>
  requires net::is_const_buffer_sequence<Buffers>::value net::awaitable<io_result>
  write_client(const Buffers& buffers) {
    expire_after(limits_.idle_timeout);
    auto w = start_write(client_, buffers);
    if (w.rest_count != 0) {
      auto [ec, n] = co_await net::async_write(client_, w.remaining(), nothrow);
      w.ec = ec;
      w.written += n;
    }
    bytes_out_ += w.written;
    co_return io_result{w.ec, w.written, w.ec && timed_out_};
  }

  net::awaitable<io_result> write_client(std::string_view bytes) {
    co_return co_await write_client(net::buffer(bytes.data(), bytes.size()));
  }

  net::awaitable<io_result> read_upstream(std::size_t max) {
    expire_after(limits_.upstream_timeout);
    auto& buffer = upstream_->buffer;
    auto [ec, n] = co_await upstream_->socket.async_read_some(
        net::buffer(buffer.prepare(max).data(), max), nothrow);
    buffer.commit(n);
    co_return io_result{ec, n, ec && timed_out_};
  }

  template <class Buffers> net::awaitable<io_result> write_upstream(const Buffers& buffers) {
    expire_after(limits_.upstream_timeout);
    auto w = start_write(upstream_->socket, buffers);
    if (w.rest_count != 0) {
      auto [ec, n] = co_await net::async_write(upstream_->socket, w.remaining(), nothrow);
      w.ec = ec;
      w.written += n;
    }
    co_return io_result{w.ec, w.written, w.ec && timed_out_};
  }

  // ---- the request loop ------------------------------------------------------------------

  net::awaitable<void> serve() {
    for (bool first = true;; first = false) {
      const auto got = co_await read_head(first);
      if (got != head_status::ok)
        co_return;
      // The head's views stay valid until the next read into in_; nothing uses them after.
      in_.consume(head_.size);
      started_ = logging_ ? steady::now() : steady::time_point{};
      bytes_in_ = bytes_out_ = 0;
      upstream_ms_ = -1;
      status_ = 0;
      token_.reset();
      api_caller_.clear();
      phase_ = phase::busy;
      const bool keep = admin_ ? co_await serve_admin() : co_await serve_request();
      log_access();
      if (!keep || shared_.draining.load(std::memory_order_relaxed))
        co_return;
      in_.shrink(read_chunk);
    }
  }

  net::awaitable<head_status> read_head(bool first) {
    scanned_ = 0;
    skip_empty_lines();
    phase_ = in_.empty() ? phase::idle : phase::head;
    expire_after(first || phase_ == phase::head ? limits_.header_timeout : limits_.idle_timeout);
    for (;;) {
      if (!in_.empty()) {
        const auto scan = http1::scan_head(in_.data(), scanned_);
        if (scan.error != http1::head_error::none)
          co_return co_await refuse(refusal_for(scan.error));
        if (scan.size > limits_.max_header_bytes ||
            (scan.size == 0 && in_.size() > limits_.max_header_bytes))
          co_return co_await refuse({431, "request header is larger than the limit"});
        if (scan.size != 0) {
          const auto e = http1::parse_request(in_.data().substr(0, scan.size), head_);
          if (e != http1::head_error::none)
            co_return co_await refuse(refusal_for(e));
          co_return head_status::ok;
        }
      }
      if (phase_ == phase::idle && shared_.draining.load(std::memory_order_relaxed))
        co_return head_status::closed;
      auto [ec, n] = co_await client_.async_read_some(
          net::buffer(in_.prepare(read_chunk).data(), read_chunk), nothrow);
      if (ec)
        co_return head_status::closed; // peer gone, timed out, or drained
      in_.commit(n);
      if (phase_ == phase::idle) {
        skip_empty_lines();
        if (!in_.empty()) {
          phase_ = phase::head;
          expire_after(limits_.header_timeout);
        }
      }
    }
  }

  // RFC 9112 section 2.2: a server should ignore empty lines before a request line.
  void skip_empty_lines() {
    while (in_.data().starts_with("\r\n"))
      in_.consume(2);
  }

  /// Answers with a JSON error and closes: for requests whose framing cannot be trusted.
  net::awaitable<head_status> refuse(std::pair<unsigned, std::string_view> why) {
    method_.clear();
    path_for_log_ = {};
    started_ = steady::now();
    co_await answer(why.first, why.second, true);
    log_access();
    co_return head_status::refused;
  }

  /// Writes a JSON error response; returns whether the connection may carry on.
  net::awaitable<bool> answer(unsigned status, std::string_view message, bool close,
                              std::string_view allow = {}) {
    status_ = status;
    build_error_response(out_, status, message, close, allow);
    const auto written = co_await write_client(out_);
    co_return written && !close;
  }

  net::awaitable<bool> answer_json(const api_response& r, bool close) {
    status_ = r.status;
    build_json_response(out_, r.status, r.body, close, r.allow);
    const auto written = co_await write_client(out_);
    co_return written && !close;
  }

  bool closing() const { return !keep_alive_ || shared_.draining.load(std::memory_order_relaxed); }

  /// Whether an early answer must close: its request body would be left unread.
  bool body_pending() const { return body_.type != http1::framing::kind::none; }

  net::awaitable<bool> serve_request() {
    const auto& h = head_;
    method_.assign(h.method);
    path_for_log_ = {};
    keep_alive_ = h.version == 11 && http1::keeps_alive(h);

    if (const auto fe = http1::request_framing(h, body_); fe != http1::framing_error::none) {
      body_ = {};
      co_return co_await answer(400, describe(fe), true);
    }
    if (const auto pe = normalize_target(h.target, target_); pe != path_error::none)
      co_return co_await answer(400, proxy::describe(pe), true);
    path_for_log_ = target_.path;
    const auto hosts = count_fields(h, "host");
    if (hosts > 1 || (hosts == 0 && h.version == 11))
      co_return co_await answer(400, hosts ? "more than one Host header" : "missing Host header",
                                true);
    const auto keys = count_fields(h, "x-api-key");
    if (keys > 1)
      co_return co_await answer(400, "more than one X-API-Key header", true);
    key_ = keys ? h.find("x-api-key") : std::nullopt;

    want_continue_ = false;
    if (auto expect = h.find("expect")) {
      if (!http1::iequals(*expect, "100-continue"))
        co_return co_await answer(417, "only \"Expect: 100-continue\" is supported", true);
      want_continue_ = h.version == 11 && body_pending();
    }
    client_address_ = client_address(peer_, h, deps_.settings.trusted_proxies);

    if (tokenapi::api_handler::is_api_path(target_.path))
      co_return co_await serve_api();
    co_return co_await serve_proxy();
  }

  // ---- the token API ---------------------------------------------------------------------

  net::awaitable<bool> serve_api() {
    // The head's bytes are reused by the body reads below: the request keeps copies.
    api_key_.assign(key_.value_or(std::string_view{}));
    api_query_.assign(target_.query);
    api_request request{
        method_,         target_.path,
        api_query_,      key_ ? std::optional<std::string_view>(api_key_) : std::nullopt,
        client_address_, {}};
    if (auto early = deps_.api.refuse_early(request)) {
      api_caller_ = std::move(early->caller_id);
      co_return co_await answer_json(*early, closing() || body_pending());
    }
    if (body_.type == http1::framing::kind::length && body_.length > limits_.max_admin_body_bytes)
      co_return co_await answer(413, body_limit_message(), true);
    if (want_continue_ && !co_await write_client(continue_line))
      co_return false;

    const auto body = co_await read_admin_body();
    if (body == body_status::failed)
      co_return false;
    if (body == body_status::bad_framing)
      co_return co_await answer(400, "malformed chunked body", true);
    if (body == body_status::too_large)
      co_return co_await answer(413, body_limit_message(), true);

    request.body = api_body_;
    api_response response = co_await net::co_spawn(
        shared_.api_pool,
        [this, &request]() -> net::awaitable<api_response> { co_return deps_.api.handle(request); },
        net::use_awaitable);
    api_caller_ = std::move(response.caller_id);
    co_return co_await answer_json(response, closing());
  }

  std::string body_limit_message() const {
    return "request body is larger than " + std::to_string(limits_.max_admin_body_bytes) + " bytes";
  }

  enum class body_status { ok, failed, bad_framing, too_large };

  /// Reads the whole request body of an API call into api_body_, within the limit.
  net::awaitable<body_status> read_admin_body() {
    api_body_.clear();
    const auto limit = limits_.max_admin_body_bytes;
    if (body_.type == http1::framing::kind::length) {
      while (api_body_.size() < body_.length) {
        if (in_.empty() && !co_await read_client(read_chunk))
          co_return body_status::failed;
        const auto take = std::min<std::size_t>(in_.size(), body_.length - api_body_.size());
        api_body_.append(in_.data().substr(0, take));
        in_.consume(take);
      }
      bytes_in_ = api_body_.size();
      co_return body_status::ok;
    }
    if (body_.type != http1::framing::kind::chunked)
      co_return body_status::ok;
    decoder_.reset();
    for (;;) {
      if (in_.empty() && !co_await read_client(read_chunk))
        co_return body_status::failed;
      const auto step = decoder_.next(in_.data());
      in_.consume(step.consumed);
      if (step.error)
        co_return body_status::bad_framing;
      api_body_.append(step.data);
      if (api_body_.size() > limit)
        co_return body_status::too_large;
      if (step.done) {
        bytes_in_ = api_body_.size();
        co_return body_status::ok;
      }
    }
  }

  // ---- the proxy -------------------------------------------------------------------------

  net::awaitable<bool> serve_proxy() {
    const auto* route = deps_.routes.match(head_.method, target_.path);
    if (route == nullptr)
      co_return co_await answer(403, "no route allows this path", closing() || body_pending());
    tokenapi::decision decision;
    if (!route->open) {
      decision = deps_.auth.decide(key_, client_address_, route->permissions, deps_.clock.now());
      token_ = decision.token;
      if (!decision.allowed())
        co_return co_await answer(decision.status(), decision.message(client_address_),
                                  closing() || body_pending());
    }
    if (want_continue_ && !co_await write_client(continue_line))
      co_return false;

    build_upstream_request(upstream_head_, head_,
                           {target_, body_, decision.token.get(), peer_text_, peer_trusted_,
                            shared_.upstream_authority});
    co_return co_await forward();
  }

  /// Connects a fresh upstream connection into upstream_; false (with upstream_ reset) if
  /// no address of the upstream answers in time.
  net::awaitable<bool> connect_upstream() {
    upstream_ = w_.pool.make();
    for (const auto& endpoint : shared_.upstream_endpoints) {
      expire_after(limits_.upstream_connect_timeout);
      auto [ec] = co_await upstream_->socket.async_connect(endpoint, nothrow);
      if (!ec) {
        upstream_->socket.set_option(tcp::no_delay(true), ec);
        upstream_->socket.non_blocking(true, ec); // for start_write
        co_return true;
      }
      boost::system::error_code ignored;
      upstream_->socket.close(ignored);
    }
    upstream_.reset();
    co_return false;
  }

  void discard_upstream() {
    if (upstream_) {
      boost::system::error_code ignored;
      upstream_->socket.close(ignored);
      upstream_.reset();
    }
  }

  /// Whether the request may be sent again on a new connection when a reused one turns out to
  /// have been closed by the upstream: idempotent (RFC 9110 section 9.2.2), and all of it is
  /// in hand (no body to stream).
  bool retryable(std::size_t early_body) const {
    static constexpr std::array<std::string_view, 6> idempotent{"GET",   "HEAD",   "OPTIONS",
                                                                "TRACE", "DELETE", "PUT"};
    const bool whole = body_.type == http1::framing::kind::none ||
                       (body_.type == http1::framing::kind::length && early_body == body_.length);
    return whole && std::find(idempotent.begin(), idempotent.end(), method_) != idempotent.end();
  }

  net::awaitable<bool> forward() {
    const auto upstream_started = logging_ ? steady::now() : steady::time_point{};
    // Content-Length bytes that came with the head go out with it, in one write.
    const std::size_t early_body =
        body_.type == http1::framing::kind::length
            ? static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), body_.length))
            : 0;
    const std::array<net::const_buffer, 2> first{net::buffer(upstream_head_),
                                                 net::buffer(in_.data().data(), early_body)};
    const bool retry = retryable(early_body);

    // A pooled connection the upstream closed meanwhile is replaced by a new one. A request
    // that can be retried goes out on it unchecked and is sent again if the upstream closes
    // before the first byte of an answer; any other is sent only on a connection that passes
    // a check, and again only when not one byte of it went out.
    for (int attempt = 0;; ++attempt) {
      upstream_ = attempt == 0 ? w_.pool.take(!retry) : nullptr;
      const bool reused = upstream_ != nullptr;
      if (!reused && !co_await connect_upstream())
        co_return co_await answer(502, "upstream unreachable", closing() || body_pending());
      const auto w = co_await write_upstream(first);
      if (!w) {
        discard_upstream();
        if (reused && attempt == 0 && w.bytes == 0 && !w.timed_out)
          continue;
        co_return co_await answer(w.timed_out ? 504 : 502,
                                  w.timed_out ? "upstream timed out" : "upstream write failed",
                                  true);
      }
      if (!retry || !reused || attempt != 0)
        break;
      // The first bytes of the answer tell whether the connection was still open.
      const auto r = co_await read_upstream(read_chunk);
      if (r)
        break;
      if (r.timed_out || (r.ec != net::error::eof && r.ec != net::error::connection_reset))
        co_return co_await fail_upstream_read(r);
      discard_upstream();
    }
    in_.consume(early_body);
    bytes_in_ = early_body;

    const bool more_body =
        body_.type == http1::framing::kind::chunked ||
        (body_.type == http1::framing::kind::length && body_.length > early_body);
    if (more_body && !co_await relay_request_body(body_.length - early_body))
      co_return false;

    phase_ = phase::awaiting_upstream;
    const bool keep = co_await relay_response();
    if (logging_)
      upstream_ms_ = ms_between(upstream_started, steady::now());
    co_return keep;
  }

  /// Streams the rest of the request body to the upstream. On failure the client has been
  /// answered (or is gone) and the connection must close.
  net::awaitable<bool> relay_request_body(std::uint64_t remaining) {
    if (body_.type == http1::framing::kind::length) {
      while (remaining > 0) {
        if (in_.empty()) {
          const auto want =
              static_cast<std::size_t>(std::min<std::uint64_t>(remaining, relay_chunk));
          if (!co_await read_client(want)) {
            discard_upstream();
            co_return false;
          }
        }
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), remaining));
        if (!co_await write_upstream(net::buffer(in_.data().data(), take))) {
          discard_upstream();
          co_await answer(502, "upstream write failed", true);
          co_return false;
        }
        in_.consume(take);
        remaining -= take;
        bytes_in_ += take;
      }
      co_return true;
    }
    if (body_.type != http1::framing::kind::chunked)
      co_return true;

    decoder_.reset();
    for (;;) {
      if (in_.empty() && !co_await read_client(relay_chunk)) {
        discard_upstream();
        co_return false;
      }
      chunk_out_.clear();
      bool done = false;
      while (!in_.empty() && !done) {
        const auto step = decoder_.next(in_.data());
        if (step.error) {
          discard_upstream();
          co_await answer(400, "malformed chunked body", true);
          co_return false;
        }
        if (!step.data.empty()) {
          http1::append_chunk_header(chunk_out_, step.data.size());
          chunk_out_.append(step.data);
          chunk_out_.append("\r\n");
          bytes_in_ += step.data.size();
        }
        in_.consume(step.consumed);
        done = step.done;
      }
      if (done)
        chunk_out_.append(http1::last_chunk);
      if (!chunk_out_.empty() && !co_await write_upstream(net::buffer(chunk_out_))) {
        discard_upstream();
        co_await answer(502, "upstream write failed", true);
        co_return false;
      }
      if (done)
        co_return true;
    }
  }

  enum class upstream_head { ok, failed };

  /// Reads the next response head from the upstream into response_ (skipping or relaying
  /// interim 1xx responses). On failure the client has been answered.
  net::awaitable<bool> read_response_head() {
    for (;;) {
      std::size_t scanned = 0;
      for (;;) {
        auto& buffer = upstream_->buffer;
        if (!buffer.empty()) {
          const auto scan = http1::scan_head(buffer.data(), scanned);
          if (scan.error != http1::head_error::none ||
              (scan.size == 0 && buffer.size() > max_response_head))
            co_return co_await fail_upstream(502, "upstream sent a malformed response");
          if (scan.size != 0) {
            if (http1::parse_response(buffer.data().substr(0, scan.size), response_) !=
                http1::head_error::none)
              co_return co_await fail_upstream(502, "upstream sent a malformed response");
            break;
          }
        }
        const auto r = co_await read_upstream(read_chunk);
        if (!r)
          co_return co_await fail_upstream_read(r);
      }
      if (response_.status >= 200)
        co_return true;
      if (response_.status == 101)
        co_return co_await fail_upstream(502, "upstream switched protocols unasked");
      if (response_.status != 100 && head_.version == 11) {
        build_client_response(out_, response_, client_framing::as_upstream, false);
        if (!co_await write_client(out_)) {
          discard_upstream();
          co_return false;
        }
      }
      upstream_->buffer.consume(response_.size);
    }
  }

  net::awaitable<bool> fail_upstream(unsigned status, std::string_view message) {
    discard_upstream();
    co_await answer(status, message, true);
    co_return false;
  }

  /// For a read from the upstream that failed before an answer was complete.
  net::awaitable<bool> fail_upstream_read(io_result r) {
    co_return co_await fail_upstream(r.timed_out ? 504 : 502,
                                     r.timed_out ? "upstream timed out"
                                                 : "upstream closed the connection");
  }

  net::awaitable<bool> relay_response() {
    if (!co_await read_response_head())
      co_return false;
    http1::framing framing;
    if (http1::response_framing(response_, method_, framing) != http1::framing_error::none)
      co_return co_await fail_upstream(502, "upstream sent an ambiguous response framing");

    const bool chunked_out = framing.type == http1::framing::kind::chunked ||
                             framing.type == http1::framing::kind::until_close;
    const auto out_framing = !chunked_out          ? client_framing::as_upstream
                             : head_.version == 11 ? client_framing::chunked
                                                   : client_framing::until_close;
    const bool close = closing() || out_framing == client_framing::until_close;
    status_ = response_.status;
    build_client_response(out_, response_, out_framing, close);
    const bool upstream_keeps = http1::keeps_alive(response_);
    upstream_->buffer.consume(response_.size);
    phase_ = phase::busy;

    bool complete = false;
    switch (framing.type) {
    case http1::framing::kind::none:
      complete = static_cast<bool>(co_await write_client(out_));
      break;
    case http1::framing::kind::length:
      complete = co_await relay_length(framing.length);
      break;
    case http1::framing::kind::chunked:
      complete = co_await relay_chunked(out_framing == client_framing::chunked);
      break;
    case http1::framing::kind::until_close:
      complete = co_await relay_until_close(out_framing == client_framing::chunked);
      break;
    }
    if (!complete) {
      discard_upstream();
      co_return false;
    }
    if (upstream_keeps && framing.type != http1::framing::kind::until_close)
      w_.pool.give_back(std::move(upstream_));
    else
      discard_upstream();
    co_return !close;
  }

  /// Content-Length body: the head and what is buffered go in one write, then the rest.
  net::awaitable<bool> relay_length(std::uint64_t remaining) {
    auto& buffer = upstream_->buffer;
    bool head_sent = false;
    while (!head_sent || remaining > 0) {
      if (buffer.empty() && head_sent) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, relay_chunk));
        if (!co_await read_upstream(want))
          co_return false;
      }
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), remaining));
      const std::array<net::const_buffer, 2> parts{
          net::buffer(head_sent ? std::string_view{} : std::string_view(out_)),
          net::buffer(buffer.data().data(), take)};
      if (!co_await write_client(parts))
        co_return false;
      head_sent = true;
      buffer.consume(take);
      remaining -= take;
    }
    co_return true;
  }

  /// Chunked body from the upstream: decoded, and re-chunked for HTTP/1.1 clients.
  net::awaitable<bool> relay_chunked(bool rechunk) {
    auto& buffer = upstream_->buffer;
    decoder_.reset();
    bool head_sent = false;
    for (;;) {
      chunk_out_.clear();
      if (!head_sent)
        chunk_out_.append(out_);
      bool done = false;
      while (!buffer.empty() && !done) {
        const auto step = decoder_.next(buffer.data());
        if (step.error)
          co_return false;
        if (!step.data.empty()) {
          if (rechunk)
            http1::append_chunk_header(chunk_out_, step.data.size());
          chunk_out_.append(step.data);
          if (rechunk)
            chunk_out_.append("\r\n");
        }
        buffer.consume(step.consumed);
        done = step.done;
      }
      if (done && rechunk)
        chunk_out_.append(http1::last_chunk);
      if (!chunk_out_.empty() && !co_await write_client(net::buffer(chunk_out_)))
        co_return false;
      head_sent = true;
      if (done)
        co_return true;
      if (!co_await read_upstream(relay_chunk))
        co_return false;
    }
  }

  /// A body delimited by the upstream closing: relayed until EOF.
  net::awaitable<bool> relay_until_close(bool rechunk) {
    auto& buffer = upstream_->buffer;
    bool head_sent = false;
    for (;;) {
      chunk_out_.clear();
      if (!head_sent)
        chunk_out_.append(out_);
      if (!buffer.empty()) {
        if (rechunk)
          http1::append_chunk_header(chunk_out_, buffer.size());
        chunk_out_.append(buffer.data());
        if (rechunk)
          chunk_out_.append("\r\n");
        buffer.consume(buffer.size());
      }
      if (!chunk_out_.empty() && !co_await write_client(net::buffer(chunk_out_)))
        co_return false;
      head_sent = true;
      const auto r = co_await read_upstream(relay_chunk);
      if (r.ec == net::error::eof) {
        if (rechunk)
          co_return static_cast<bool>(co_await write_client(http1::last_chunk));
        co_return true;
      }
      if (!r)
        co_return false;
    }
  }

  // ---- the admin listener ----------------------------------------------------------------

  net::awaitable<bool> serve_admin() {
    method_.assign(head_.method);
    client_address_ = peer_;
    keep_alive_ = head_.version == 11 && http1::keeps_alive(head_);
    if (http1::request_framing(head_, body_) != http1::framing_error::none)
      co_return co_await answer(400, "invalid message framing", true);
    if (normalize_target(head_.target, target_) != path_error::none)
      co_return co_await answer(400, "bad request path", true);
    path_for_log_ = target_.path;
    const bool close = closing() || body_pending();
    if (target_.path != "/healthz" && target_.path != "/readyz")
      co_return co_await answer(404, "not found", close);
    if (head_.method != "GET" && head_.method != "HEAD")
      co_return co_await answer(405, "method not allowed", close, "GET, HEAD");
    api_response r{200, R"({"status":"ok"})", {}, {}};
    if (target_.path == "/readyz") {
      if (shared_.draining.load())
        r = {503, R"({"status":"draining"})", {}, {}};
      // Fleet mode answers from the follower's state: never a call to the database here.
      else if (deps_.sync && !deps_.sync->ever_synced())
        r = {503, R"({"status":"not synced with the token database yet"})", {}, {}};
      else if (deps_.sync)
        r.body = R"({"status":"ready","database":")" +
                 std::string(deps_.sync->connected() ? "connected" : "unreachable") +
                 R"(","staleness_ms":)" + std::to_string(deps_.sync->staleness_ms()) + "}";
      else if (!deps_.service.healthy())
        r = {503, R"({"status":"token store unavailable"})", {}, {}};
      else
        r.body = R"({"status":"ready"})";
    }
    status_ = r.status;
    build_json_response(out_, r.status, r.body, close);
    if (head_.method == "HEAD")
      out_.resize(out_.size() - r.body.size());
    co_return static_cast<bool>(co_await write_client(out_)) && !close;
  }

  // ---- access log ------------------------------------------------------------------------

  void log_access() {
    if (!logging_ || status_ == 0)
      return;
    json_line line;
    line.add("method", method_)
        .add("path", path_for_log_)
        .add("status", status_)
        .add("token_id", token_ ? std::string_view(token_->id) : api_caller_)
        .add("client", client_address_.to_string())
        .add_ms("duration_ms", ms_between(started_, steady::now()));
    if (upstream_ms_ >= 0)
      line.add_ms("upstream_ms", upstream_ms_);
    line.add("bytes_in", std::uint64_t{bytes_in_})
        .add("bytes_out", std::uint64_t{bytes_out_})
        .add("listener", admin_ ? "admin" : "main");
    deps_.log.write(std::move(line).finish());
  }

  worker& w_;
  shared_state& shared_;
  const server_dependencies& deps_;
  const limits& limits_;
  tcp::socket client_;
  steady::time_point deadline_ = steady::time_point::max();
  bool timed_out_ = false;
  const bool logging_ = deps_.log.enabled(log_level::info); // the access log, and its timings
  bool admin_;
  phase phase_ = phase::idle;
  tokenapi::ip_address peer_;
  std::string peer_text_;
  bool peer_trusted_ = false; ///< the peer is one of trusted_proxies
  tokenapi::ip_address client_address_;

  byte_buffer in_;
  std::size_t scanned_ = 0;
  http1::head head_;
  http1::head response_;
  http1::framing body_;
  http1::chunked_decoder decoder_;
  normalized_target target_;
  std::optional<std::string_view> key_;
  bool keep_alive_ = false;
  bool want_continue_ = false;
  std::unique_ptr<upstream_connection> upstream_;
  std::string out_;
  std::string upstream_head_;
  std::string chunk_out_;
  std::string api_body_;
  std::string api_key_;
  std::string api_query_;

  // For the access log.
  std::string method_;
  std::string_view path_for_log_;
  std::shared_ptr<const tokenapi::auth_entry> token_;
  std::string api_caller_;
  unsigned status_ = 0;
  steady::time_point started_{};
  double upstream_ms_ = -1;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
};

void start_connection(worker& w, tcp::socket socket, bool admin) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto c = std::make_shared<connection>(w, std::move(socket), admin);
  net::co_spawn(
      w.io, [c]() { return c->run(); }, net::detached);
}

void sweep_connections(worker& w) {
  const auto now = coarse_now();
  for (auto* c : w.live)
    c->expire_if_due(now);
}

void drain_connections(worker& w) {
  for (auto* c : w.live)
    c->drain();
}

} // namespace tokengate::proxy::detail
