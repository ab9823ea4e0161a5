// `tokengate serve`: the wiring of the layers, and the one place that takes signals.
#include "proxy/serve.hpp"

#include "proxy/audit_log.hpp"
#include "proxy/fleet.hpp"
#include "proxy/log.hpp"
#include "proxy/openssl_memory.hpp"
#include "proxy/reload.hpp"
#include "proxy/server.hpp"
#include "store/rocksdb_store.hpp"
#include "tokenapi/api.hpp"
#include "tokenapi/token_service.hpp"

#include <csignal>
#include <iostream>
#include <memory>
#include <pthread.h>
#include <set>
#include <unistd.h>

namespace tokengate::proxy {
namespace {

// ---- Signals -----------------------------------------------------------------------------

/// Blocks the signals the sidecar acts on in this thread and so in every thread it starts
/// later: only `wait_for_stop`'s sigwait takes them. Acting on one more signal is one more
/// sigaddset here and one more case there.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that goes away mid-write is an error value of the write, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

/// Takes the blocked signals one at a time and acts on each: SIGHUP reopens the audit log file
/// and reloads the configuration (README "Live reload"); SIGTERM and SIGINT end the wait, for a
/// graceful stop.
void wait_for_stop(const sigset_t& signals, server& srv, audit_log& audit, log_sink& log) {
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0)
      continue;
    switch (signal) {
    case SIGHUP:
      audit.reopen();     // after logrotate moved it away
      (void)srv.reload(); // logged and counted by the server
      break;
    case SIGTERM:
    case SIGINT:
      log.event(log_level::info, "stopping",
                [&](json_line& l) { l.add("signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"); });
      return;
    default:
      break;
    }
  }
}

// ---- The token side: stores, authorizer, service -------------------------------------------

/// The local store in `dir`; throws its one-line reason (e.g. another process holds it).
/// RocksDB's warnings and errors, and the store's failed and resumed writes, go to `log`.
std::unique_ptr<store::rocksdb_store> open_local(const std::filesystem::path& dir, log_sink& log) {
  auto opened = store::rocksdb_store::open(dir, [&log](bool error, std::string_view message) {
    log.event(error ? log_level::error : log_level::warn, "token store",
              [&](json_line& l) { l.add("detail", message); });
  });
  if (!opened)
    throw std::runtime_error(opened.error().message());
  return std::move(*opened);
}

/// The local store, in fleet mode the database in front of it, and the token service on them.
class token_side {
public:
  /// Opens the local store (and the fleet's connection settings); throws one line when it cannot.
  token_side(const config& c, log_sink& log)
      : local_(open_local(c.data_dir, log)),
        fleet_(c.database_url.empty() ? nullptr : std::make_unique<fleet>(c, *local_, log)),
        service_(fleet_ ? fleet_->store() : *local_, auth_, clock_) {}
  // The follower feeds `service_`: it stops before `service_` goes, also when the start fails.
  ~token_side() {
    if (fleet_)
      fleet_->stop();
  }
  token_side(const token_side&) = delete;
  token_side& operator=(const token_side&) = delete;

  tokenapi::authorizer& auth() { return auth_; }
  tokenapi::system_clock& clock() { return clock_; }
  tokenapi::token_service& service() { return service_; }
  fleet* fleet_mode() { return fleet_.get(); }

  /// Stops following the database and closes the local store, flushed.
  void close(log_sink& log) {
    if (fleet_)
      fleet_->stop();
    if (auto flushed = local_->flush(); !flushed)
      log.event(log_level::warn, "could not flush the store",
                [&](json_line& l) { l.add("error", flushed.error().message()); });
    fleet_.reset();
    local_.reset();
  }

private:
  std::unique_ptr<store::rocksdb_store> local_;
  std::unique_ptr<fleet> fleet_; ///< null when standalone
  tokenapi::authorizer auth_;
  tokenapi::system_clock clock_;
  tokenapi::token_service service_;
};

std::string_view describe(tokenapi::token_service::bootstrap_outcome o) {
  using enum tokenapi::token_service::bootstrap_outcome;
  switch (o) {
  case created_from_file:
    return "bootstrap token created from file";
  case generated:
    return "bootstrap token generated and written to file";
  case present:
    return "bootstrap token from file is present";
  case revoked:
    return "bootstrap token from file was deleted or rotated since; it stays revoked";
  case not_needed:
    return "no bootstrap token file and the store holds tokens: nothing to do";
  }
  return "bootstrap";
}

// A bootstrap token that came into being at this start is a token change like any other.
void audit_bootstrap(audit_log& audit, tokenapi::token_service::bootstrap_outcome o,
                     std::string made_id) {
  using enum tokenapi::token_service::bootstrap_outcome;
  if (o != created_from_file && o != generated)
    return;
  tokenapi::audit_event e;
  e.operation = "bootstrap";
  e.actor_id = "system";
  e.target_id = std::move(made_id);
  e.target_name = "bootstrap";
  e.changed = {"name", "permissions"};
  e.status = 200;
  audit.record(e);
}

/// Loads the stored tokens into the authorizer. Throws one line when it cannot.
void load_tokens(token_side& tokens, log_sink& log) {
  auto loaded = tokens.service().load();
  if (!loaded)
    throw std::runtime_error("cannot load tokens: " + loaded.error().message());
  if (loaded->unreadable != 0)
    log.event(log_level::warn, "some stored tokens are unreadable and stay unusable",
              [&](json_line& l) { l.add("count", std::uint64_t{loaded->unreadable}); });
}

/// Makes sure of the bootstrap token: at once when standalone, under the fleet-wide lock in
/// fleet mode (and then follows the database). Throws one line when the bootstrap file is bad.
void start_tokens(const config& c, token_side& tokens, audit_log& audit, log_sink& log) {
  const auto bootstrap = [&] {
    std::string made_id;
    const auto outcome = tokens.service().bootstrap(c.bootstrap_token_file, &made_id);
    log.event(log_level::info, describe(outcome),
              [&](json_line& l) { l.add("file", c.bootstrap_token_file.string()); });
    audit_bootstrap(audit, outcome, std::move(made_id));
  };
  if (auto* f = tokens.fleet_mode())
    f->start(tokens.service(), bootstrap, std::chrono::milliseconds(1000));
  else
    bootstrap();
}

// ---- The network side --------------------------------------------------------------------

/// Starts the server on `tokens`, says where it listens, and stops it gracefully once a signal
/// asks to stop. A reload reads the configuration from `reload_source`.
void serve_until_stopped(const config& c, token_side& tokens, audit_log& audit, log_sink& log,
                         const sigset_t& signals, config_source reload_source) {
  tokenapi::api_handler api(tokens.service(), tokens.auth(), tokens.clock(), &audit);
  auto* f = tokens.fleet_mode();
  server srv({c, tokens.auth(), api, tokens.service(), tokens.clock(), log,
              f ? &f->status() : nullptr, std::move(reload_source)});
  srv.start();
  if (const auto why = openssl_allocator_fallback(); !why.empty())
    log.event(log_level::warn, "OpenSSL allocates from the C library's malloc, not mimalloc",
              [&](json_line& l) { l.add("reason", why); });
  log.event(log_level::info, "listening", [&](json_line& l) {
    l.add("listen", endpoint{c.listen.host, srv.port()}.to_string())
        .add("admin_listen", endpoint{c.admin_listen.host, srv.admin_port()}.to_string())
        .add("upstream", c.upstream.to_string())
        .add("tokens", std::uint64_t{tokens.auth().size()})
        .add("threads", c.threads)
        .add("openssl_allocator", openssl_allocator());
  });
  // Written now, but not waited for: a stalled log reader must not keep signals unanswered.
  log.flush_soon();
  wait_for_stop(signals, srv, audit, log);
  srv.stop();
}

void run(const config& c, log_sink& log, const sigset_t& signals, config_source reload_source) {
  token_side tokens(c, log);
  load_tokens(tokens, log);
  audit_log audit(log, c.audit_log_file);
  start_tokens(c, tokens, audit, log);
  serve_until_stopped(c, tokens, audit, log, signals, std::move(reload_source));
  tokens.close(log);
  log.event(log_level::info, "stopped");
}

} // namespace

int run_sidecar(const std::vector<std::string_view>& args, const env_lookup& env,
                std::span<const std::string> variables) {
  const auto signals = block_signals();
  config c;
  std::set<std::string> read;
  try {
    c = load_config(args, [&](const std::string& name) {
      read.insert(name);
      return env(name);
    });
  } catch (const config_error& e) {
    std::cerr << "tokengate: " << e.what() << '\n';
    return 2;
  }
  log_sink log(STDOUT_FILENO, c.level);
  // Named, never shown: a value may be a secret.
  for (const auto& name : unread_variables(variables, read))
    log.event(log_level::warn, "environment variable ignored: no setting has this name",
              [&](json_line& l) { l.add("variable", name); });
  try {
    // A reload reads the configuration as this start did: the same arguments, environment, file.
    run(c, log, signals, [&args, &env] { return load_config(args, env); });
    return 0;
  } catch (const std::exception& e) {
    // What is queued follows when `log` goes, which waits for a stalled reader 2 s at most.
    std::cerr << "tokengate: " << e.what() << '\n';
    return 1;
  }
}

} // namespace tokengate::proxy
