#include "proxy/fleet.hpp"

#include "store/rocksdb_store.hpp"

#include <fstream>
#include <iostream>
#include <stdexcept>

namespace tokengate::proxy {
namespace {

std::string read_password(const std::filesystem::path& file) {
  if (file.empty())
    return {};
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line))
    throw std::runtime_error("cannot read database_password_file " + file.string());
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

store::pg_settings settings_of(const config& c) {
  if (const auto mistake = store::url_mistake(c.database_url); !mistake.empty())
    throw std::runtime_error(mistake);
  return {c.database_url, read_password(c.database_password_file), std::chrono::seconds(2)};
}

} // namespace

fleet::fleet(const config& settings, store::rocksdb_store& replica, log_sink& log)
    : settings_(settings_of(settings)), replica_(replica), log_(log), primary_(settings_),
      store_(primary_, replica), max_staleness_(settings.max_staleness) {
  log_.event(log_level::info, "fleet mode: PostgreSQL is the source of truth",
             [&](json_line& l) { l.add("database", store::describe(settings_)); });
  primary_.on_lost_commit([this](std::string_view id, bool applied) {
    log_.event(log_level::warn,
               applied ? "the token database was lost during a commit; the write was found "
                         "committed when read back and is answered as done"
                       : "the token database was lost during a commit; whether the write was "
                         "applied cannot be told: answered 503, the token should be read again",
               [&](json_line& l) { l.add("token_id", id); });
  });
  store_.on_replica_failure([this](std::string_view id, boost::system::error_code why) {
    log_.event(log_level::error,
               "the local replica did not take a token write the database committed: the token "
               "is refused on this sidecar until the change log brings it in",
               [&](json_line& l) {
                 l.add("token_id", id).add("error", why.message());
                 if (auto reason = replica_.last_error(); !reason.empty())
                   l.add("reason", reason);
               });
  });
}

fleet::~fleet() { stop(); }

void fleet::stop() {
  if (follower_)
    follower_->stop();
}

void fleet::report(const store::follower_event& e) {
  using kind = store::follower_event::kind;
  const auto staleness = static_cast<std::uint64_t>(e.staleness_ms);
  switch (e.what) {
  case kind::connected:
    log_.event(log_level::info, "token database reachable again: in sync",
               [&](json_line& l) { l.add("staleness_ms", staleness); });
    break;
  case kind::disconnected:
    if (follower_ && follower_->status().ever_synced())
      log_.event(log_level::warn,
                 "token database unreachable: deciding on the last known tokens, token API "
                 "writes answer 503; retrying with backoff",
                 [&](json_line& l) { l.add("error", e.detail).add("staleness_ms", staleness); });
    else
      log_.event(log_level::warn,
                 "not ready: the token database is unreachable and there is no local replica "
                 "yet; retrying with backoff",
                 [&](json_line& l) { l.add("error", e.detail); });
    break;
  case kind::still_disconnected:
    log_.event(log_level::warn, "token database still unreachable",
               [&](json_line& l) { l.add("error", e.detail).add("staleness_ms", staleness); });
    break;
  case kind::snapshot:
    log_.event(log_level::info, "loaded every token from the database",
               [&](json_line& l) { l.add("tokens", std::uint64_t{e.count}); });
    break;
  case kind::fail_closed:
    log_.event(log_level::warn,
               "cut off from the token database longer than max_staleness_ms: refusing every key",
               [&](json_line& l) { l.add("staleness_ms", staleness); });
    break;
  case kind::fail_open:
    log_.event(log_level::info, "in sync with the token database again: checking keys");
    break;
  case kind::replica_write_failed:
  case kind::replica_read_failed:
    log_.event(log_level::error,
               e.what == kind::replica_write_failed
                   ? "replica write failed: the tokens changed in the database since are refused "
                     "on this sidecar until the local replica takes the change; retrying with "
                     "backoff"
                   : "replica read failed: the tokens changed in the database since are refused "
                     "on this sidecar until the local replica can be read; retrying with backoff",
               [&](json_line& l) { l.add("reason", e.detail).add("staleness_ms", staleness); });
    break;
  case kind::replica_recovered:
    log_.event(log_level::info, "the local replica takes the token changes again: in sync",
               [&](json_line& l) { l.add("staleness_ms", staleness); });
    break;
  }
}

// Under the fleet-wide lock, after a catch-up: the bootstrap sees every sidecar's tokens, so N
// sidecars starting together on an empty database create one bootstrap token.
store::result<void> fleet::run_bootstrap(bool at_start) {
  if (auto locked = primary_.lock_bootstrap(); !locked)
    return locked;
  struct unlock {
    store::pg_store& p;
    ~unlock() { p.unlock_bootstrap(); }
  } guard{primary_};
  if (auto synced = follower_->catch_up(); !synced)
    return synced;
  if (at_start) {
    bootstrap_();
    return {};
  }
  try {
    bootstrap_();
  } catch (const std::exception& e) {
    log_.event(log_level::error, "bootstrap failed; retrying",
               [&](json_line& l) { l.add("error", e.what()); });
    return store::errc::io_error;
  }
  return {};
}

void fleet::start(tokenapi::token_service& service, std::function<void()> bootstrap,
                  std::chrono::milliseconds poll_interval) {
  bootstrap_ = std::move(bootstrap);
  store::follower_options options;
  options.poll_interval = poll_interval;
  options.max_staleness = max_staleness_;
  options.on_event = [this](const store::follower_event& e) { report(e); };
  options.on_first_sync = [this] { return run_bootstrap(false); };
  follower_ = std::make_unique<store::fleet_follower>(settings_, replica_, service, options);
  bool done = false;
  if (follower_->connect_and_sync()) {
    if (auto booted = run_bootstrap(true); booted)
      done = true;
  }
  follower_->start(done);
}

} // namespace tokengate::proxy
