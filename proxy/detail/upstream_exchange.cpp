#include "proxy/detail/upstream_exchange.hpp"

#include "proxy/detail/tls_context.hpp"

namespace tokengate::proxy::detail {
namespace {

constexpr std::size_t max_response_head = 64 * 1024;

const upstream_failure malformed{{502, "upstream sent a malformed response"}};
const upstream_failure unreachable{{502, "upstream unreachable"}, false};
const upstream_failure timed_out{{504, "upstream timed out"}};
const upstream_failure write_failed{{502, "upstream write failed"}};
const upstream_failure closed{{502, "upstream closed the connection"}};

} // namespace

upstream_exchange::upstream_exchange(upstream_pool& pool, std::span<const tcp::endpoint> endpoints,
                                     const limits& l, deadline& clock, loop_metrics& metrics,
                                     upstream_tls tls)
    : pool_(pool), endpoints_(endpoints), limits_(&l), clock_(clock), metrics_(metrics),
      tls_(std::move(tls)) {}

upstream_failure upstream_exchange::fail(upstream_failure f, upstream_error reason) {
  count(reason);
  discard();
  return f;
}

upstream_failure upstream_exchange::failed_read(const io_result& r) {
  return r.timed_out ? fail(timed_out, upstream_error::timeout)
                     : fail(closed, upstream_error::reset);
}

net::awaitable<std::optional<upstream_failure>> upstream_exchange::connect() {
  connection_ = pool_.make();
  auto& socket = connection_->stream.socket();
  for (const auto& endpoint : endpoints_) {
    clock_.expire_after(limits_->upstream_connect_timeout);
    auto [ec] = co_await socket.async_connect(endpoint, nothrow);
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      socket.non_blocking(true, ec); // for start_write
      report_unread_bytes(socket.native_handle());
      connection_->count_in(metrics_.upstream_open);
      metrics_.upstream_new.add();
      if (tls_.context) // not a conditional expression: GCC 12 miscompiles co_await in one
        co_return co_await handshake();
      co_return std::nullopt;
    }
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  co_return fail(unreachable, upstream_error::connect);
}

net::awaitable<std::optional<upstream_failure>> upstream_exchange::handshake() {
  connection_->tls_context = tls_.context->current();
  auto& stream = connection_->stream;
  if (!stream.start_tls(*connection_->tls_context, tls_role::client) ||
      !expect_upstream_host(stream.tls(), tls_.host)) {
    tls_error_ = {"upstream TLS handshake failed", "the upstream host name cannot be checked"};
    co_return fail({{502, tls_error_.answer}, false, tls_error_.detail}, upstream_error::connect);
  }
  pool_.offer_session(stream.tls(), connection_->tls_context.get());
  // The handshake counts as part of connecting.
  clock_.expire_after(limits_->upstream_connect_timeout);
  const auto ec = co_await stream.handshake();
  if (!ec)
    co_return std::nullopt;
  if (clock_.timed_out)
    co_return fail(timed_out, upstream_error::timeout);
  tls_error_ = upstream_tls_error(stream.tls(), ec);
  co_return fail({{502, tls_error_.answer}, false, tls_error_.detail}, upstream_error::connect);
}

net::awaitable<std::optional<upstream_failure>>
upstream_exchange::send(std::span<const net::const_buffer> first, bool retryable) {
  for (int attempt = 0;; ++attempt) {
    connection_ = attempt == 0 ? pool_.take() : nullptr;
    const bool reused = connection_ != nullptr;
    if (reused)
      metrics_.upstream_reused.add();
    else if (auto failed = co_await connect())
      co_return failed;
    const auto w = co_await stream().write(first);
    if (!w) {
      if (reused && attempt == 0 && w.bytes == 0 && !w.timed_out) {
        discard();
        continue;
      }
      co_return w.timed_out ? fail(timed_out, upstream_error::timeout)
                            : fail(write_failed, upstream_error::reset);
    }
    start_answer_clock();
    if (!retryable || !reused || attempt != 0)
      co_return std::nullopt;
    // The first bytes of the answer tell whether the connection was still open.
    const auto r = co_await read_answer();
    if (r)
      co_return std::nullopt;
    // Over TLS, a close without close_notify reads as a truncated stream.
    if (r.timed_out || (r.ec != net::error::eof && r.ec != net::error::connection_reset &&
                        r.ec != net::ssl::error::stream_truncated))
      co_return failed_read(r);
    discard();
  }
}

net::awaitable<std::optional<upstream_failure>>
upstream_exchange::read_head(http1::head& response) {
  std::size_t scanned = 0;
  for (;;) {
    auto& buffer = connection_->buffer;
    if (!buffer.empty()) {
      const auto size = http1::scan_head(buffer.data(), scanned);
      if (!size || *size > max_response_head || (*size == 0 && buffer.size() > max_response_head))
        co_return fail(malformed, upstream_error::bad_response);
      if (*size != 0) {
        if (http1::parse_response(buffer.data().substr(0, *size), response))
          co_return std::nullopt;
        co_return fail(malformed, upstream_error::bad_response);
      }
    }
    if (coarse_now() >= answer_due_)
      co_return fail(timed_out, upstream_error::timeout);
    const auto r = co_await read_answer();
    if (!r)
      co_return failed_read(r);
  }
}

net::awaitable<io_result> upstream_exchange::read_answer() {
  auto& watch = connection_->watch;
  // A sweep that cancelled the socket as the request went out (its deadline passed just as the
  // write completed) ended the watch, not the request: the answer is read anew, as without one.
  if (watch && watch->ended && std::get<0>(*watch->ended) == net::error::operation_aborted)
    watch.reset();
  if (!watch)
    co_return co_await answer_stream().read(upstream_read_chunk);
  clock_.expire_after(answer_due_ - coarse_now());
  const auto [ec, n] = co_await connection_->take_watch();
  connection_->buffer.commit(n);
  connection_->read_at = steady::now();
  co_return io_result{ec, n, ec && clock_.timed_out};
}

timed_stream<flex_stream> upstream_exchange::answer_stream() {
  auto s = stream();
  s.timeout = answer_due_ - coarse_now();
  return s;
}

void upstream_exchange::finish(bool reusable) {
  if (connection_ && connection_->stream.is_tls())
    pool_.keep_session(connection_->stream.tls(), connection_->tls_context);
  if (connection_ && reusable)
    pool_.give_back(std::move(connection_));
  discard();
}

void upstream_exchange::discard() {
  if (!connection_)
    return;
  connection_->stream.close();
  connection_.reset();
}

void upstream_exchange::cancel() {
  if (!connection_)
    return;
  connection_->stream.cancel();
}

} // namespace tokengate::proxy::detail
