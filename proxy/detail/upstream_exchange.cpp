#include "proxy/detail/upstream_exchange.hpp"

namespace tokengate::proxy::detail {
namespace {

constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t max_response_head = 64 * 1024;

upstream_failure malformed() { return {{502, "upstream sent a malformed response"}}; }

// For a read from the upstream that failed before an answer was complete.
upstream_failure failed_read(const io_result& r) {
  if (r.timed_out)
    return {{504, "upstream timed out"}};
  return {{502, "upstream closed the connection"}};
}

} // namespace

upstream_exchange::upstream_exchange(upstream_pool& pool, std::span<const tcp::endpoint> endpoints,
                                     const limits& l, deadline& clock)
    : pool_(pool), endpoints_(endpoints), limits_(l), clock_(clock) {}

net::awaitable<bool> upstream_exchange::connect() {
  connection_ = pool_.make();
  for (const auto& endpoint : endpoints_) {
    clock_.expire_after(limits_.upstream_connect_timeout);
    auto [ec] = co_await connection_->socket.async_connect(endpoint, nothrow);
    if (!ec) {
      connection_->socket.set_option(tcp::no_delay(true), ec);
      connection_->socket.non_blocking(true, ec); // for start_write
      co_return true;
    }
    boost::system::error_code ignored;
    connection_->socket.close(ignored);
  }
  connection_.reset();
  co_return false;
}

net::awaitable<std::optional<upstream_failure>>
upstream_exchange::send(std::span<const net::const_buffer> first, bool retryable) {
  for (int attempt = 0;; ++attempt) {
    connection_ = attempt == 0 ? pool_.take(!retryable) : nullptr;
    const bool reused = connection_ != nullptr;
    if (!reused && !co_await connect())
      co_return upstream_failure{{502, "upstream unreachable"}, false};
    const auto w = co_await stream().write(first);
    if (!w) {
      discard();
      if (reused && attempt == 0 && w.bytes == 0 && !w.timed_out)
        continue;
      co_return upstream_failure{{w.timed_out ? 504u : 502u,
                                  w.timed_out ? "upstream timed out" : "upstream write failed"}};
    }
    if (!retryable || !reused || attempt != 0)
      co_return std::nullopt;
    // The first bytes of the answer tell whether the connection was still open.
    const auto r = co_await stream().read(read_chunk);
    if (r)
      co_return std::nullopt;
    if (r.timed_out || (r.ec != net::error::eof && r.ec != net::error::connection_reset)) {
      discard();
      co_return failed_read(r);
    }
    discard();
  }
}

net::awaitable<std::optional<upstream_failure>>
upstream_exchange::read_head(http1::head& response) {
  std::size_t scanned = 0;
  for (;;) {
    auto& buffer = connection_->buffer;
    if (!buffer.empty()) {
      const auto scan = http1::scan_head(buffer.data(), scanned);
      if (scan.error != http1::head_error::none ||
          (scan.size == 0 && buffer.size() > max_response_head)) {
        discard();
        co_return malformed();
      }
      if (scan.size != 0) {
        if (http1::parse_response(buffer.data().substr(0, scan.size), response) ==
            http1::head_error::none)
          co_return std::nullopt;
        discard();
        co_return malformed();
      }
    }
    const auto r = co_await stream().read(read_chunk);
    if (!r) {
      discard();
      co_return failed_read(r);
    }
  }
}

void upstream_exchange::finish(bool reusable) {
  if (connection_ && reusable)
    pool_.give_back(std::move(connection_));
  discard();
}

void upstream_exchange::discard() {
  if (!connection_)
    return;
  boost::system::error_code ignored;
  connection_->socket.close(ignored);
  connection_.reset();
}

void upstream_exchange::cancel() {
  if (!connection_)
    return;
  boost::system::error_code ignored;
  connection_->socket.cancel(ignored);
}

} // namespace tokengate::proxy::detail
