#pragma once

// The one place the proxy's Asio-facing sources take their Asio vocabulary from.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <time.h>

#include <chrono>

namespace tokengate::proxy::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

/// The monotonic clock at the kernel's tick (a few ms): what deadlines are set and checked
/// with, at a fraction of the cost of a precise reading. Same epoch as steady_clock.
inline steady::time_point coarse_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return steady::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

/// Completion token for coroutines that look at error codes instead of catching exceptions.
inline constexpr auto nothrow = net::as_tuple(net::use_awaitable);

} // namespace tokengate::proxy::detail
