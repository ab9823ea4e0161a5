// The pool of upstream connections on real loopback sockets, one event loop, no sidecar: how an
// idle plain connection is watched (README "The proxy", rule 4).
#include "proxy/detail/upstream_pool.hpp"

#include <catch2/catch.hpp>
#include <poll.h>

#include <array>
#include <atomic>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace tokengate::proxy::detail;
using namespace std::chrono_literals;

namespace {

// A pool, and connections made for it to a listener of the test's own.
struct pool_fixture {
  net::io_context io{1};
  tcp::acceptor listener{io, {net::ip::make_address("127.0.0.1"), 0}};
  upstream_pool pool{io, 8, std::chrono::seconds(60)};

  // A connection as an exchange leaves it after a whole answer, and the upstream's end of it.
  std::pair<std::unique_ptr<upstream_connection>, tcp::socket> connection() {
    auto c = pool.make();
    c->stream.socket().connect(listener.local_endpoint());
    c->stream.socket().non_blocking(true);
    auto upstream = listener.accept();
    c->read_at = steady::now();
    return {std::move(c), std::move(upstream)};
  }

  // `n` connections given back in turn (the first the least recently used), and their
  // upstreams' ends.
  std::vector<tcp::socket> fill(int n) {
    std::vector<tcp::socket> upstreams;
    for (int i = 0; i < n; ++i) {
      auto [c, upstream] = connection();
      pool.give_back(std::move(c));
      upstreams.push_back(std::move(upstream));
    }
    io.poll();
    return upstreams;
  }
};

// Waits until something (bytes, or the peer's close) can be read on `c`.
void wait_readable(upstream_connection& c) {
  pollfd p{c.stream.socket().native_handle(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
}

constexpr std::string_view stray = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";

// Whether the pool's end of `upstream` closes within `wait`: the upstream reads its end of
// stream (after whatever it had not read). A check that it stays open waits less: a close made
// before it would show at once.
bool closed_by_pool(tcp::socket& upstream, std::chrono::milliseconds wait = 2000ms) {
  upstream.non_blocking(true);
  for (auto i = wait / 10ms; i > 0; --i) {
    pollfd p{upstream.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 10) == 1) {
      std::array<char, 256> sink{};
      boost::system::error_code ec;
      upstream.read_some(net::buffer(sink), ec);
      if (ec == net::error::eof)
        return true;
    }
  }
  return false;
}

} // namespace

TEST_CASE("an idle pooled connection is watched: the upstream's close or stray bytes end it",
          "[upstream][pool]") {
  pool_fixture f;
  auto [c, upstream] = f.connection();
  f.pool.give_back(std::move(c));
  f.io.poll(); // the watch's first try: nothing yet
  SECTION("nothing came: it is taken, and its watch brings the answer") {
    auto taken = f.pool.take();
    REQUIRE(taken != nullptr);
    REQUIRE(taken->watch != nullptr);
    net::write(upstream, net::buffer(stray));
    io_outcome got;
    net::co_spawn(
        f.io, [&]() -> net::awaitable<void> { got = co_await taken->take_watch(); }, net::detached);
    f.io.run_for(2s);
    CHECK(std::get<0>(got) == boost::system::error_code());
    CHECK(std::get<1>(got) == stray.size());
  }
  SECTION("stray bytes") {
    net::write(upstream, net::buffer(stray));
    f.io.run_for(200ms);
    CHECK(f.pool.take() == nullptr);
  }
  SECTION("the upstream's close") {
    upstream.close();
    f.io.run_for(200ms);
    CHECK(f.pool.take() == nullptr);
  }
}

TEST_CASE("a connection given back well after its answer's last read is checked at once, so a "
          "request in the same turn of the loop cannot take what came meanwhile",
          "[upstream][pool]") {
  pool_fixture f;
  auto [c, upstream] = f.connection();
  // The answer's end went to a slow client: a second since the last read from the upstream.
  c->read_at = steady::now() - 1s;
  SECTION("stray bytes") { net::write(upstream, net::buffer(stray)); }
  SECTION("the upstream's close") { upstream.close(); }
  wait_readable(*c);
  f.pool.give_back(std::move(c));
  // No turn of the loop in between: the watch's first try could not have told yet.
  CHECK(f.pool.take() == nullptr);
}

TEST_CASE("an idle pooled connection whose watch ends is closed then, not when a request comes "
          "to it",
          "[upstream][pool]") {
  pool_fixture f;
  auto [c, upstream] = f.connection();
  std::atomic<std::int64_t> open{0}; // as tokengate_upstream_connections_open
  c->count_in(open);
  f.pool.give_back(std::move(c));
  f.io.poll();
  SECTION("the upstream's half-close (its FIN)") { upstream.shutdown(tcp::socket::shutdown_send); }
  SECTION("stray bytes") { net::write(upstream, net::buffer(stray)); }
  f.io.run_for(200ms);
  // No take in between: the loop alone closed it, and counts it closed.
  CHECK(closed_by_pool(upstream));
  CHECK(open == 0);
  // And the sweep lets go of it: the pool's room is for connections that can serve.
  CHECK(f.pool.next_expiry());
  f.pool.close_expired(coarse_now());
  CHECK_FALSE(f.pool.next_expiry());
}

TEST_CASE("the sweeper closes pooled connections idle past the pool's limit, and only those",
          "[upstream][pool]") {
  pool_fixture f;
  auto [old_one, old_upstream] = f.connection();
  auto [new_one, new_upstream] = f.connection();
  CHECK_FALSE(f.pool.next_expiry()); // none idle: an idle loop need not wake
  const auto start = coarse_now();
  f.pool.give_back(std::move(old_one));
  std::this_thread::sleep_for(100ms);
  f.pool.give_back(std::move(new_one));
  f.io.poll();
  // The sweeper of a loop without connections wakes when the oldest reaches the limit.
  REQUIRE(f.pool.next_expiry());
  CHECK(*f.pool.next_expiry() >= start + 60s);
  CHECK(*f.pool.next_expiry() < start + 60s + 100ms);
  // 60 s and 50 ms after the first went idle (the limit is 60 s): the second, given back 100 ms
  // later, has not reached it.
  f.pool.close_expired(start + 60s + 50ms);
  CHECK(closed_by_pool(old_upstream));
  CHECK_FALSE(closed_by_pool(new_upstream, 300ms));
  CHECK(*f.pool.next_expiry() >= start + 60s + 90ms); // the second's (the coarse clock's ticks)
  auto kept = f.pool.take();
  REQUIRE(kept != nullptr);
  CHECK(kept->stream.socket().is_open());
  CHECK(f.pool.take() == nullptr);
}

TEST_CASE("a full pool makes room from connections closed in it before it refuses one",
          "[upstream][pool]") {
  pool_fixture f; // room for 8
  auto upstreams = f.fill(8);
  upstreams[3].shutdown(tcp::socket::shutdown_send); // closed by the upstream
  f.io.run_for(200ms);
  auto [ninth, ninth_upstream] = f.connection();
  f.pool.give_back(std::move(ninth));
  CHECK_FALSE(closed_by_pool(ninth_upstream, 300ms));    // pooled, in the closed one's room
  CHECK_FALSE(closed_by_pool(upstreams.front(), 300ms)); // the oldest stays
  auto taken = f.pool.take();
  REQUIRE(taken != nullptr);
  CHECK(taken->stream.socket().is_open());
}

TEST_CASE("a full pool keeps the connection given back and closes its least recently used one",
          "[upstream][pool]") {
  pool_fixture f; // room for 8
  auto upstreams = f.fill(8);
  auto [ninth, ninth_upstream] = f.connection();
  f.pool.give_back(std::move(ninth));
  CHECK(closed_by_pool(upstreams.front()));
  CHECK_FALSE(closed_by_pool(upstreams.back(), 300ms));
  CHECK_FALSE(closed_by_pool(ninth_upstream, 300ms));
}
