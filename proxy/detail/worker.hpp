#pragma once

#include "proxy/detail/net.hpp"
#include "proxy/detail/tls_context.hpp"
#include "proxy/detail/upstream_pool.hpp"
#include "proxy/metrics.hpp"
#include "proxy/reload.hpp"
#include "proxy/server.hpp"

#include <atomic>
#include <functional>
#include <limits>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace tokengate::proxy::detail {

class session;

/// What every event loop shares: the dependencies, the resolved upstream, and counters.
struct shared_state {
  explicit shared_state(const server_dependencies& d)
      : deps(d), max_connections(d.settings.limits.max_connections) {}

  server_dependencies deps;
  std::vector<tcp::endpoint> upstream_endpoints;
  std::string upstream_authority; ///< "host:port", the Host of HTTP/1.0 requests without one
  std::atomic<std::size_t> connections{0};       ///< open on the main listener
  std::atomic<std::size_t> admin_connections{0}; ///< open on the admin listener
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> refused_connections{0}; ///< answered 503 at max_connections
  std::atomic<std::size_t> max_connections;          ///< live: limits.max_connections
  std::atomic<std::size_t> tls_handshakes{0};        ///< TLS handshakes under way, main listener
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  /// tokengate_tokens_expiring, counted off the event loops every few seconds (server.cpp)
  std::atomic<std::uint64_t> tokens_expiring{0};
  std::function<reload_report()> reload;         ///< the server's reload(), for POST /reload
  std::vector<const loop_metrics*> loops;        ///< every worker's figures, for /metrics
  double start_time_seconds = 0;                 ///< unix time the server was made
  net::thread_pool api_pool{1};                  ///< token API calls (synced store writes) run here
  std::unique_ptr<reloadable_context> tls;       ///< the main listener's, when TLS is on
  std::unique_ptr<reloadable_context> admin_tls; ///< the admin listener's, when TLS is on
  std::unique_ptr<reloadable_context> upstream_tls; ///< set for an https:// upstream
};

/// One event loop and what belongs to it alone.
struct worker {
  worker(shared_state& s, std::size_t i)
      : shared(s), index(i), pool(io, 64, s.deps.settings.limits.upstream_idle_timeout),
        settings(std::make_shared<const live_settings>(live_settings::from(s.deps.settings))) {}
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  shared_state& shared;
  std::size_t index;
  net::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<tcp::acceptor> admin_acceptor; ///< on worker 0 only
  upstream_pool pool;
  /// The live settings in force on this loop: a session takes them when a request starts.
  /// Each loop has its own copy, so taking them costs no shared reference count.
  std::shared_ptr<const live_settings> settings;
  loop_metrics metrics;              ///< written on this worker's thread only
  std::unordered_set<session*> live; ///< touched only on this worker's thread
  /// The main listener's TLS handshakes under way on this loop, oldest first (this worker's
  /// thread only): at max_tls_handshakes the oldest may give its place up.
  std::list<session*> handshakes;
  /// When the oldest of `handshakes` started (coarse_now(), in steady_clock ticks), or the
  /// largest value when there is none: written on this worker's thread, read by the loops that
  /// accept, so that at max_tls_handshakes a new connection goes to a loop whose stalled
  /// handshake can give its place up (server.cpp).
  std::atomic<steady::rep> oldest_handshake{std::numeric_limits<steady::rep>::max()};
  /// live.size() and the connections given to this loop that have not started yet, readable
  /// from other threads.
  std::atomic<std::size_t> live_count{0};
  /// The sweeper's: every `sweep_interval` while the loop has connections; with none it waits
  /// for the first to start (which cancels it) or for a pooled upstream connection to reach its
  /// idle limit, so an idle loop wakes at most once for each connection its pool holds.
  net::steady_timer sweep_timer{io};
  std::thread thread;
};

/// Serves one accepted connection until it closes; the caller has counted it in `w.live_count`.
/// `peer`: the client's address from accept(). `admin`: the admin listener's routes.
void start_session(worker& w, tcp::socket socket, const tcp::endpoint& peer, bool admin);

/// Cancels the waits of the sessions of `w` whose deadline has passed, and closes the pooled
/// upstream connections left unused too long. Runs on `w`'s thread every `sweep_interval`
/// while `w` has connections (timeouts hold to within that), and without any when the pool's
/// oldest connection reaches its idle limit.
void sweep_sessions(worker& w);
inline constexpr auto sweep_interval = std::chrono::milliseconds(50);

/// Closes the sessions of `w` that wait for a request; the others close after their
/// current response. Must run on `w`'s thread.
void drain_sessions(worker& w);

/// Cuts every session of `w` (`session::cut`): the stop has waited shutdown_timeout_ms. Must run
/// on `w`'s thread.
void cut_sessions(worker& w);

/// Writes the access line of every request of `w` still unfinished. Only once `w`'s thread has
/// ended.
void log_unfinished_sessions(worker& w);

/// Ends the oldest TLS handshake under way on `w`'s main listener, when it has been under way
/// for `handshake_give_up_after` or longer, to make room for a new one; false when there is
/// none. Must run on `w`'s thread.
bool give_up_oldest_handshake(worker& w);
/// A client completes its handshake in a few round trips; one still under way after this long
/// is most likely stalled, and gives its place up to a new one at max_tls_handshakes.
inline constexpr auto handshake_give_up_after = std::chrono::seconds(1);

/// Closes the admin connection of `w` that has waited longest for a request (an idle keep-alive
/// connection, or one that has sent nothing yet), as nginx reuses idle keep-alive connections;
/// false when every admin connection is in the middle of a request. Must run on `w`'s thread.
bool evict_idle_admin_session(worker& w);

} // namespace tokengate::proxy::detail
