#include "proxy/server.hpp"

#include "proxy/answer.hpp"
#include "proxy/detail/shared_accept.hpp"
#include "proxy/detail/tls_log.hpp"
#include "proxy/detail/worker.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace tokengate::proxy {

using namespace detail;

namespace {

constexpr int backlog = 1024;
constexpr std::size_t max_admin_connections = 64;
// How long the requests cut at shutdown_timeout_ms have to write their 503 and access line.
constexpr auto cut_grace = std::chrono::seconds(1);
// The answer to a connection above max_connections, built once by the one error builder.
const std::string& over_capacity() {
  static const std::string answer = [] {
    std::string out;
    build_error_response(out, 503, "too many open connections", true);
    return out;
  }();
  return answer;
}

// Loads a listener's pair at start-up; a failure stops the start with one line.
std::unique_ptr<reloadable_context> load_certificates(log_sink& log, std::string_view listener,
                                                      const tls_settings& s) {
  if (!s.enabled())
    return nullptr;
  auto loaded = server_certificates(s);
  log_certificate(log, listener, s, loaded->facts(), "start");
  return loaded;
}

tcp::acceptor bind(net::io_context& io, const endpoint& where) {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(where.host, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + where.to_string() + ": " + ec.message());
  const tcp::endpoint ep(address, where.port);
  tcp::acceptor a(io);
  const auto fail = [&](const boost::system::error_code& e) {
    throw std::runtime_error("cannot listen on " + where.to_string() + ": " + e.message());
  };
  if (a.open(ep.protocol(), ec); ec)
    fail(ec);
  a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (a.bind(ep, ec); ec)
    fail(ec);
  if (a.listen(backlog, ec); ec)
    fail(ec);
  report_unread_bytes(a.native_handle()); // the connections it accepts inherit it
  return a;
}

/// Counts one more connection in `counter` if it holds fewer than `limit`.
bool take_place(std::atomic<std::size_t>& counter, std::size_t limit) {
  auto open = counter.load(std::memory_order_relaxed);
  while (open < limit)
    if (counter.compare_exchange_weak(open, open + 1, std::memory_order_relaxed))
      return true;
  return false;
}

} // namespace

struct server::impl {
  explicit impl(const server_dependencies& deps) : shared(deps), current(deps.settings) {}

  net::awaitable<void> accept_loop(worker& target, tcp::acceptor& acceptor, bool admin);
  net::awaitable<void> usage_loop();
  void count_expiring();
  static constexpr unsigned expiring_interval = 5; ///< seconds between two expiring counts
  /// Reloads the listeners' pairs and the upstream's files where they changed (`forced`: also
  /// those whose last load failed); the first failure's text, or nullopt.
  std::optional<std::string> reload_certificates(bool forced);
  /// Reloads one of them when it is due; the failure's text, or nullopt.
  std::optional<std::string> reload_one(reloadable_context& context, std::string_view which,
                                        bool forced);
  static net::awaitable<void> sweep_loop(worker& w);

  /// Hands `next` to every loop; each takes it between two of its requests.
  void apply(const config& next);

  shared_state shared;
  std::mutex reload_mutex; ///< one reload at a time; guards `current`
  config current;          ///< the start-up configuration with the live settings in force
  std::vector<std::unique_ptr<worker>> workers;
  std::optional<net::steady_timer> usage_timer;
  bool usage_stopping = false;

  std::mutex mutex;
  std::condition_variable all_done;
  std::size_t running = 0;
  bool started = false;
  bool stopped = false;
};

net::awaitable<void> server::impl::accept_loop(worker& target, tcp::acceptor& acceptor,
                                               bool admin) {
  auto& log = shared.deps.log;
  for (;;) {
    tcp::endpoint peer;
    auto [ec, socket] = co_await acceptor.async_accept(target.io, peer, nothrow);
    if (ec) {
      if (!acceptor.is_open() || ec == net::error::operation_aborted)
        co_return;
      // Out of descriptors or memory: say so, then give the system a moment.
      log.event(log_level::warn, "accept failed",
                [&](json_line& l) { l.add("error", ec.message()); });
      net::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    auto& counter = admin ? shared.admin_connections : shared.connections;
    const auto limit =
        admin ? max_admin_connections : shared.max_connections.load(std::memory_order_relaxed);
    // A place is taken only while one is free: the loops accept side by side, and two of them
    // must not both take the last one. A full admin listener makes room by closing an idle
    // connection (this loop is the admin connections' own), whose place the new one takes at
    // once: a probe must not fail because others hold idle keep-alive connections.
    bool placed = take_place(counter, limit);
    if (!placed && admin && evict_idle_admin_session(target)) {
      counter.fetch_add(1, std::memory_order_relaxed); // one over until the evicted one has ended
      placed = true;
    }
    if (!placed) {
      // A TLS client could not read a plaintext answer: its connection is only closed.
      const bool tls = (admin ? shared.admin_tls : shared.tls) != nullptr;
      if (!tls)
        ::send(socket.native_handle(), over_capacity().data(), over_capacity().size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
      if (!admin) // the metric counts max_connections' refusals
        shared.refused_connections.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      continue;
    }
    // The loop that was free to accept serves the connection, unless another loop holds fewer:
    // then that one does, so that the loops' connections stay even (keep-alive connections
    // opened to an idle sidecar would otherwise all wake, and stay on, the first loop). Counted
    // at once, so that a burst of connections spreads.
    auto* serve_on = &target;
    if (!admin)
      for (auto& w : workers)
        if (w->live_count.load(std::memory_order_relaxed) <
            serve_on->live_count.load(std::memory_order_relaxed))
          serve_on = w.get();
    // At max_tls_handshakes a new connection takes the place of a stalled handshake only on the
    // loop where that one is under way (give_up_oldest_handshake): it goes to the loop whose
    // oldest handshake has been under way longest, once that is long enough to give its place
    // up. The loop that holds stalled handshakes holds more connections, and would otherwise
    // never be given the new ones that could replace them.
    if (!admin && shared.tls &&
        shared.tls_handshakes.load(std::memory_order_relaxed) >=
            target.settings->limits.max_tls_handshakes) {
      auto oldest = (coarse_now() - handshake_give_up_after).time_since_epoch().count();
      for (auto& w : workers)
        if (const auto since = w->oldest_handshake.load(std::memory_order_relaxed);
            since <= oldest) {
          oldest = since;
          serve_on = w.get();
        }
    }
    serve_on->live_count.fetch_add(1, std::memory_order_relaxed);
    if (serve_on == &target) {
      start_session(target, std::move(socket), peer, admin);
      continue;
    }
    // The socket moves to the other loop's reactor (Asio's registration may be made from any
    // thread, as async_accept into another loop's context made it before).
    boost::system::error_code failed;
    const int fd = socket.release(failed);
    tcp::socket there(serve_on->io);
    if (!failed)
      there.assign(peer.protocol(), fd, failed);
    if (failed) {
      if (fd >= 0 && !there.is_open())
        ::close(fd);
      serve_on->live_count.fetch_sub(1, std::memory_order_relaxed);
      counter.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    net::post(serve_on->io, [serve_on, s = std::move(there), peer]() mutable {
      start_session(*serve_on, std::move(s), peer, false);
    });
  }
}

net::awaitable<void> server::impl::sweep_loop(worker& w) {
  for (;;) {
    // Without connections the loop wakes only for an upstream connection left idle too long
    // (a sweep after its limit: the sweep's clock is the coarse one), or when a connection
    // starts.
    if (!w.live.empty())
      w.sweep_timer.expires_after(sweep_interval);
    else if (const auto due = w.pool.next_expiry())
      w.sweep_timer.expires_at(*due + sweep_interval);
    else
      w.sweep_timer.expires_at(steady::time_point::max());
    co_await w.sweep_timer.async_wait(nothrow); // cancelled: a connection started, or
                                                // limits.upstream_idle_timeout_ms changed
    sweep_sessions(w);
  }
}

void server::impl::count_expiring() {
  std::chrono::seconds within;
  {
    std::lock_guard lock(reload_mutex);
    within = current.expiry_warning;
  }
  shared.tokens_expiring.store(shared.deps.auth.count_expiring(shared.deps.clock.now(), within),
                               std::memory_order_relaxed);
}

// On the token API's thread: last-use writes every second, and the expiring-tokens gauge (a
// walk of the whole index) every expiring_interval ticks, never on an event loop.
net::awaitable<void> server::impl::usage_loop() {
  auto& log = shared.deps.log;
  // While the store refuses writes (a full disk) every tick fails alike: one line when the
  // failures start and one when they end, not a line a second.
  std::uint64_t failed_in_a_row = 0;
  for (unsigned tick = 0; !usage_stopping; ++tick) {
    if (tick % expiring_interval == 0)
      count_expiring();
    usage_timer->expires_after(std::chrono::seconds(1));
    co_await usage_timer->async_wait(nothrow);
    // A changed certificate is seen within about two seconds; expired TLS sessions go as often.
    if (tick % 2 == 1) {
      (void)reload_certificates(false);
      for (const auto* context : {shared.tls.get(), shared.admin_tls.get()})
        if (context != nullptr)
          context->flush_expired_sessions();
    }
    if (auto written = shared.deps.service.flush_usage(); !written) {
      if (failed_in_a_row++ == 0)
        log.event(log_level::warn, "could not write last-use times",
                  [&](json_line& l) { l.add("error", written.error().message()); });
    } else if (*written != 0 && failed_in_a_row != 0) {
      log.event(log_level::info, "last-use times written again",
                [&](json_line& l) { l.add("failed_writes", failed_in_a_row); });
      failed_in_a_row = 0;
    }
  }
}

std::optional<std::string> server::impl::reload_certificates(bool forced) {
  std::optional<std::string> first_error;
  const std::pair<reloadable_context*, std::string_view> contexts[] = {
      {shared.tls.get(), "main"},
      {shared.admin_tls.get(), "admin"},
      {shared.upstream_tls.get(), "upstream"}};
  for (const auto& [context, which] : contexts) {
    if (context == nullptr)
      continue;
    auto failed = reload_one(*context, which, forced);
    if (failed && !first_error)
      first_error = std::move(failed);
  }
  return first_error;
}

std::optional<std::string> server::impl::reload_one(reloadable_context& context,
                                                    std::string_view which, bool forced) {
  // Unchanged files are not loaded again: a new context would drop every TLS session.
  if (!context.changed_on_disk() && !(forced && context.error()))
    return std::nullopt;
  auto& log = shared.deps.log;
  const auto& settings = shared.deps.settings;
  const bool upstream = which == "upstream";
  auto failed = context.reload();
  if (failed && upstream)
    log.event(log_level::error, "upstream TLS reload failed; the previous files are still used",
              [&](json_line& l) { l.add("error", *failed); });
  else if (failed)
    log.event(log_level::error, "TLS certificate reload failed; the previous one is still served",
              [&](json_line& l) { l.add("listener", which).add("error", *failed); });
  else if (upstream)
    log_upstream_files(log, settings.upstream_tls, context.facts(), forced ? "reload" : "watch");
  else
    log_certificate(log, which, which == "main" ? settings.tls : settings.admin_tls,
                    context.facts(), forced ? "reload" : "watch");
  return failed;
}

void server::impl::apply(const config& next) {
  const auto live = live_settings::from(next);
  shared.deps.log.set_level(live.level);
  shared.max_connections.store(live.limits.max_connections, std::memory_order_relaxed);
  for (auto& w : workers)
    net::post(w->io, [&w = *w, copy = std::make_shared<const live_settings>(live)]() mutable {
      const bool idle_limit_changed =
          copy->limits.upstream_idle_timeout != w.settings->limits.upstream_idle_timeout;
      w.pool.set_max_idle_time(copy->limits.upstream_idle_timeout);
      w.settings = std::move(copy);
      if (idle_limit_changed && w.live.empty())
        w.sweep_timer.cancel(); // a loop without connections sleeps until the old limit
    });
}

reload_report server::reload() {
  auto& s = *impl_;
  auto& log = s.shared.deps.log;
  // The TLS certificates are read again too (those that changed, or failed to load last time),
  // whatever becomes of the configuration.
  const auto certificate_error = s.reload_certificates(true);
  std::lock_guard lock(s.reload_mutex);
  reload_report report;
  try {
    if (!s.shared.deps.reload_source)
      throw config_error("this sidecar was started without a configuration to reload");
    const config loaded = s.shared.deps.reload_source();
    report = compare_configs(s.current, loaded);
    s.current = with_live_settings(std::move(s.current), loaded);
  } catch (const config_error& e) {
    report = {false, e.what(), {}, {}, {}};
  }
  if (!report.applied) {
    s.shared.reloads_failed.fetch_add(1, std::memory_order_relaxed);
    log.event(log_level::error, "configuration reload failed; nothing changed",
              [&](json_line& l) { l.add("error", report.error); });
    return report;
  }
  s.apply(s.current);
  if (certificate_error) {
    // The configuration is applied, but a certificate pair that did not load is a failure.
    report.certificate_error = *certificate_error;
    s.shared.reloads_failed.fetch_add(1, std::memory_order_relaxed);
  } else {
    s.shared.reloads_ok.fetch_add(1, std::memory_order_relaxed);
  }
  log.event(log_level::info, "configuration reloaded", [&](json_line& l) {
    l.add("changed", report.changed).add("restart_required", report.restart_required);
  });
  return report;
}

server::server(const server_dependencies& deps) : impl_(std::make_unique<impl>(deps)) {
  impl_->shared.reload = [this] { return reload(); };
  const auto& settings = deps.settings;
  for (unsigned i = 0; i < settings.threads; ++i) {
    impl_->workers.push_back(std::make_unique<worker>(impl_->shared, i));
    impl_->shared.loops.push_back(&impl_->workers.back()->metrics);
  }
  impl_->shared.start_time_seconds =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto& first = *impl_->workers.front();

  boost::system::error_code ec;
  tcp::resolver resolver(first.io);
  const auto results =
      resolver.resolve(settings.upstream.host, std::to_string(settings.upstream.port), ec);
  if (ec || results.empty())
    throw std::runtime_error("cannot resolve upstream host " + settings.upstream.host + ": " +
                             ec.message());
  for (const auto& r : results)
    impl_->shared.upstream_endpoints.push_back(r.endpoint());
  impl_->shared.upstream_authority = settings.upstream.to_string();
  impl_->shared.tls = load_certificates(deps.log, "main", settings.tls);
  impl_->shared.admin_tls = load_certificates(deps.log, "admin", settings.admin_tls);
  if (settings.upstream_tls.enabled) {
    impl_->shared.upstream_tls = upstream_certificates(settings.upstream_tls);
    log_upstream_files(deps.log, settings.upstream_tls, impl_->shared.upstream_tls->facts(),
                       "start");
  }

  first.acceptor.emplace(bind(first.io, settings.listen));
  first.admin_acceptor.emplace(bind(first.io, settings.admin_listen));
  // Each loop accepts from a descriptor of its own (shared_accept.hpp).
  for (std::size_t i = 1; i < impl_->workers.size(); ++i) {
    const int fd = ::fcntl(first.acceptor->native_handle(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
      throw std::runtime_error("cannot listen on " + settings.listen.to_string() + ": " +
                               std::strerror(errno));
    auto& w = *impl_->workers[i];
    w.acceptor.emplace(w.io, first.acceptor->local_endpoint().protocol(), fd);
  }
  if (impl_->workers.size() > 1)
    for (auto& w : impl_->workers)
      wake_one_loop_per_connection(*w->acceptor);
}

server::~server() { stop(); }

bool server::reload_certificates() { return !impl_->reload_certificates(true); }

std::uint16_t server::port() const {
  return impl_->workers.front()->acceptor->local_endpoint().port();
}

std::uint16_t server::admin_port() const {
  return impl_->workers.front()->admin_acceptor->local_endpoint().port();
}

void server::start() {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  if (s.started)
    return;
  s.started = true;
  // OpenSSL writes a TLS socket with write(2): a peer gone mid-write must be EPIPE, an error
  // value of that write, not a signal that ends the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto& first = *s.workers.front();
  for (auto& w : s.workers)
    net::co_spawn(w->io, s.accept_loop(*w, *w->acceptor, false), net::detached);
  net::co_spawn(first.io, s.accept_loop(first, *first.admin_acceptor, true), net::detached);
  net::post(s.shared.api_pool, [] { ::pthread_setname_np(::pthread_self(), "tg-api"); });
  s.usage_timer.emplace(s.shared.api_pool);
  net::co_spawn(s.shared.api_pool, s.usage_loop(), net::detached);

  s.running = s.workers.size();
  for (auto& w : s.workers) {
    net::co_spawn(w->io, impl::sweep_loop(*w), net::detached);
    // A worker with no connections would return from run() at once: keep it alive until stop.
    w->thread = std::thread([&s, &io = w->io, index = w->index] {
      // Named for top -H, perf and /proc/PID/task/*/comm (at most 15 characters).
      const auto name = "tg-loop-" + std::to_string(index);
      ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
      auto guard = net::make_work_guard(io);
      io.run();
      std::lock_guard done(s.mutex);
      --s.running;
      s.all_done.notify_all();
    });
  }
}

void server::stop() {
  auto& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.stopped)
      return;
    s.stopped = true;
  }
  s.shared.draining = true;
  for (auto& w : s.workers) {
    net::post(w->io, [&w = *w] {
      boost::system::error_code ignored;
      if (w.acceptor)
        w.acceptor->close(ignored);
      if (w.admin_acceptor)
        w.admin_acceptor->close(ignored);
      drain_sessions(w);
    });
  }
  // Wait for the connections in flight, then make every loop return.
  const auto shutdown_timeout = [&s] {
    std::lock_guard lock(s.reload_mutex);
    return s.current.limits.shutdown_timeout;
  }();
  const auto deadline = std::chrono::steady_clock::now() + shutdown_timeout;
  const auto busy = [&s] {
    for (auto& w : s.workers)
      if (w->live_count.load() != 0)
        return true;
    return false;
  };
  const auto wait_until = [&busy](std::chrono::steady_clock::time_point until) {
    while (busy() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  wait_until(deadline);
  if (busy()) {
    // Past the deadline, what is left is cut: a request not yet answered gets a 503, and every
    // cut one its access line, within cut_grace.
    for (auto& w : s.workers)
      net::post(w->io, [&w = *w] { cut_sessions(w); });
    wait_until(std::chrono::steady_clock::now() + cut_grace);
  }
  for (auto& w : s.workers)
    w->io.stop();
  for (auto& w : s.workers)
    if (w->thread.joinable())
      w->thread.join();
  // A request the cut could not end (its client reads nothing, or it waits for the token API)
  // still gets its line.
  for (auto& w : s.workers)
    log_unfinished_sessions(*w);
  for (auto& w : s.workers)
    w->pool.close_all(); // an https upstream is told with close_notify

  net::post(s.shared.api_pool, [&s] {
    s.usage_stopping = true;
    if (s.usage_timer)
      s.usage_timer->cancel();
  });
  s.shared.api_pool.join();
  (void)s.shared.deps.service.flush_usage();
}

} // namespace tokengate::proxy
