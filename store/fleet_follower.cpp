#include "store/fleet_follower.hpp"

#include "store/pg_store.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <map>

namespace tokengate::store {
namespace {

constexpr std::size_t log_page = 1000;
constexpr auto max_backoff = std::chrono::milliseconds(5000);
constexpr auto staleness_tick = std::chrono::milliseconds(100);
constexpr std::int64_t outage_report_ms = 10'000;
constexpr auto prune_interval = std::chrono::hours(1);

std::int64_t to_int(const std::optional<std::string>& text) {
  std::int64_t v = 0;
  if (text)
    std::from_chars(text->data(), text->data() + text->size(), v);
  return v;
}

// The digest the replica holds for `id` (nullopt: it holds no such token).
result<std::optional<digest>> digest_in(replica_store& replica, const std::string& id) {
  auto previous = replica.get(id);
  if (!previous)
    return previous.error();
  if (*previous)
    return std::optional<digest>{(*previous)->value_digest};
  return std::optional<digest>{};
}

// Each token of a page of the log (seq, id, digest, payload, last use) as the database holds it
// now (nullopt: deleted).
result<std::map<std::string, std::optional<token_record>>> latest_in(const pg_rows& rows) {
  std::map<std::string, std::optional<token_record>> latest;
  for (const auto& row : rows) {
    if (!row[1])
      return errc::corruption;
    if (!row[2]) {
      latest[*row[1]] = std::nullopt;
      continue;
    }
    auto r = record_from_row({row[1], row[2], row[3], row[4]});
    if (!r && r.error() != errc::corruption)
      return r.error();
    // A row the database holds wrong (a digest that is not 32 bytes: tampered with, as the
    // column does not check it) serves no key here: its token is refused as a deleted one, and
    // the other tokens' changes go on.
    latest[*row[1]] = r ? std::optional<token_record>(std::move(*r)) : std::nullopt;
  }
  return latest;
}

// What the view's database is called while a snapshot that was cut short is unfinished: no
// database's id.
constexpr std::string_view unfinished_snapshot = "(a snapshot cut short)";

// The follower's statements are short reads, and its hourly prune waits a second at most for a
// lock (prune_log): one with no answer in a few seconds means a stalled database, to be
// reconnected to (and reported).
pg_settings for_following(pg_settings s) {
  s.query_timeout = std::min(s.query_timeout, std::chrono::milliseconds(5'000));
  return s;
}

} // namespace

fleet_follower::fleet_follower(pg_settings settings, replica_store& replica, change_sink& sink,
                               follower_options options)
    : conn_(for_following(std::move(settings))), replica_(replica), sink_(sink),
      options_(std::move(options)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // A replica synced before serves until the database answers: its age is the staleness.
  const auto pos = stored_position();
  sink_database_ = pos.database_id;
  // A snapshot cut short (its first page marks the replica as of no database) may have left
  // another database's tokens: unknown, so the first catch-up drops the view.
  if (auto marked = replica_.read_meta("database_id"); marked && *marked && (*marked)->empty())
    sink_database_ = unfinished_snapshot;
  if (!pos.database_id.empty()) {
    auto at = replica_.read_meta("synced_at_ms");
    status_.synced(at && *at ? std::max<std::int64_t>(1, to_int(**at)) : 1);
    status_.set_applied(pos.applied);
    if (options_.max_staleness)
      sink_.fresh_until(status_.last_sync_ms() + options_.max_staleness->count());
  }
}

fleet_follower::~fleet_follower() {
  stop();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

fleet_follower::position fleet_follower::stored_position() const {
  position pos;
  auto id = replica_.read_meta("database_id");
  auto seq = replica_.read_meta("applied_seq");
  if (id && *id && seq && *seq) {
    pos.database_id = **id;
    pos.applied = to_int(**seq);
  }
  return pos;
}

void fleet_follower::report(follower_event e) const {
  if (options_.on_event)
    options_.on_event(e);
}

result<void> fleet_follower::connect_and_sync() {
  replica_failure_.reset();
  if (auto up = migrate_schema(conn_); !up)
    return up;
  if (auto listening = conn_.exec("LISTEN tokengate_changes"); !listening)
    return listening.error();
  return catch_up();
}

result<void> fleet_follower::catch_up() {
  // The view is as fresh as the database was when the catch-up began to read it, not when it
  // ended: a key revoked meanwhile may be in no page it read.
  const auto began = sync_status::now_ms();
  result<void> out;
  sink_.exclusive([&] { out = catch_up_locked(); });
  if (!out)
    return out;
  status_.synced(began);
  if (options_.max_staleness)
    sink_.fresh_until(began + options_.max_staleness->count());
  (void)replica_.note_meta("synced_at_ms", std::to_string(began));
  return {};
}

result<fleet_follower::log_state> fleet_follower::read_state() {
  auto rows = conn_.exec("SELECT database_id, last_seq, pruned_below FROM tokengate_meta");
  if (!rows)
    return rows.error();
  if (rows->empty() || !rows->front()[0])
    return errc::corruption;
  const auto& row = rows->front();
  return log_state{*row[0], to_int(row[1]), to_int(row[2])};
}

result<void> fleet_follower::catch_up_locked() {
  auto state = read_state();
  if (!state)
    return state.error();
  auto pos = stored_position();
  if (!sink_database_.empty() && sink_database_ != state->database_id) {
    // The view was loaded from a replica of another database: none of its keys may be served
    // here, not even while the snapshot that replaces them fails. Its pages publish again
    // whatever this database holds.
    sink_.forget_range(id_range{});
    dropped_ = id_range{};
  }
  sink_database_ = state->database_id;
  if (dropped_ || pos.database_id != state->database_id || pos.applied < state->pruned_below ||
      pos.applied > state->last_seq)
    return snapshot();
  while (pos.applied < state->last_seq) {
    auto reached = apply_log(pos.applied);
    if (!reached)
      return reached.error();
    if (*reached < 0) // the log no longer reaches back far enough
      return snapshot();
    if (*reached == pos.applied)
      break;
    pos.applied = *reached;
  }
  return {};
}

// Applies one page of the log after `after`; returns the seq reached, or -1 when the next entry
// is missing (pruned meanwhile). Each entry is applied as the token is now (seqs are gapless).
result<std::int64_t> fleet_follower::apply_log(std::int64_t after) {
  auto rows = conn_.exec("SELECT c.seq, c.id, encode(t.digest, 'hex'), t.payload, t.last_used "
                         "FROM tokengate_changes c LEFT JOIN tokengate_tokens t ON t.id = c.id "
                         "WHERE c.seq > $1 ORDER BY c.seq LIMIT " +
                             std::to_string(log_page),
                         {std::to_string(after)});
  if (!rows)
    return rows.error();
  if (rows->empty())
    return after;
  if (to_int(rows->front()[0]) != after + 1)
    return std::int64_t{-1};
  auto latest = latest_in(*rows);
  if (!latest)
    return latest.error();
  const auto reached = to_int(rows->back()[0]);
  replica_batch batch;
  std::vector<replicated_change> changes;
  std::vector<std::string> unknown; // ids whose digest the replica could not tell
  for (auto& [id, current] : *latest) {
    auto previous = digest_in(replica_, id);
    if (!previous) {
      unknown.push_back(id);
      continue;
    }
    if (current) {
      batch.puts.push_back(*current);
      batch.replaced.push_back(*previous);
    } else if (*previous)
      batch.erases.push_back(id);
    changes.push_back({id, *previous, std::move(current)});
  }
  if (!unknown.empty()) {
    withhold(changes, unknown);
    replica_failure_ = follower_event::kind::replica_read_failed;
    return errc::io_error;
  }
  batch.meta.emplace_back("applied_seq", std::to_string(reached));
  if (auto applied = apply_changes(std::move(changes), std::move(batch)); !applied)
    return applied.error();
  status_.set_applied(reached);
  for (const auto& [id, current] : *latest) // published again: each id of a page withheld before
    withheld_.erase(id);
  return reached;
}

// A page the replica did not take (or could not read): its changes reach neither the replica
// nor the seq, and the follower reads them again. Meanwhile the view drops every key the
// replica held for these tokens, so that it holds no key the database may no longer hold: a
// token deleted or rotated elsewhere is refused here, not accepted until the replica takes the
// change (the view only ever holds a part of what the replica holds, never more).
void fleet_follower::withhold(const std::vector<replicated_change>& changes,
                              std::span<const std::string> unknown) {
  for (const auto& c : changes)
    if (c.previous) {
      sink_.apply({c.id, c.previous, std::nullopt});
      withheld_.insert(c.id);
    }
  withheld_.insert(unknown.begin(), unknown.end());
  if (!unknown.empty())
    sink_.forget(unknown);
}

result<void> fleet_follower::apply_changes(std::vector<replicated_change> changes,
                                           replica_batch batch) {
  if (auto written = replica_.apply(batch); !written) {
    withhold(changes, {});
    replica_failure_ = follower_event::kind::replica_write_failed;
    return written;
  }
  for (const auto& c : changes)
    sink_.apply(c);
  return {};
}

void fleet_follower::start(bool first_sync_done) {
  first_sync_done_ = first_sync_done;
  if (conn_.connected())
    status_.set_connected(true);
  check_staleness();
  thread_ = std::thread([this] { run(); });
}

void fleet_follower::stop() {
  if (stopping_.exchange(true))
    return;
  const std::uint64_t one = 1;
  if (wake_fd_ >= 0)
    (void)::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable())
    thread_.join();
  conn_.close();
}

result<void> fleet_follower::bring_up() {
  if (auto synced = connect_and_sync(); !synced)
    return synced;
  if (!first_sync_done_ && options_.on_first_sync) {
    if (auto hooked = options_.on_first_sync(); !hooked)
      return hooked;
  }
  first_sync_done_ = true;
  return {};
}

// Waits for the database's socket or a stop, at most `timeout`.
void fleet_follower::wait_for_input(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {conn_.socket(), POLLIN, 0}};
  const nfds_t count = fds[1].fd >= 0 ? 2 : 1;
  (void)::poll(fds, count, static_cast<int>(timeout.count()));
}

void fleet_follower::check_staleness() {
  if (!options_.max_staleness)
    return;
  // Connected or not: a database that stopped answering (a stall) is as good as gone. The
  // decisions hold the bound themselves (fresh_until); this is for the logs and the flag.
  const bool stale =
      !status_.ever_synced() || status_.staleness_ms() > options_.max_staleness->count();
  if (stale == closed_)
    return;
  closed_ = stale;
  sink_.fail_closed(stale);
  report({stale ? follower_event::kind::fail_closed : follower_event::kind::fail_open,
          {},
          status_.staleness_ms(),
          0});
}

// Connects (with backoff while it cannot) and reports the outage's start, every 10 s of it,
// and its end; a replica that fails to take (or read) the changes is reported as such, not as
// the database's outage. True once connected and in sync.
bool fleet_follower::reconnect(outage& o) {
  status_.set_connected(false);
  const auto staleness = status_.staleness_ms();
  if (replica_failure_) // RocksDB takes no write after a failed one until it is resumed
    (void)replica_.resume();
  if (auto up = bring_up(); !up) {
    conn_.close();
    report_failure(o, up.error());
    for (auto waited = std::chrono::milliseconds(0); waited < o.backoff && !stopping_;
         waited += staleness_tick) {
      wait_for_input(staleness_tick);
      check_staleness();
    }
    o.backoff = std::min(o.backoff * 2, max_backoff);
    return false;
  }
  if (o.reported)
    report({o.replica ? follower_event::kind::replica_recovered : follower_event::kind::connected,
            {},
            staleness,
            0});
  o = outage{};
  status_.set_connected(true);
  check_staleness();
  return true;
}

void fleet_follower::report_failure(outage& o, boost::system::error_code why) {
  const auto now = sync_status::now_ms();
  const bool replica = replica_failure_.has_value();
  if (o.reported && replica == o.replica && now < o.next_report)
    return;
  if (replica) {
    const auto reason = replica_.last_error();
    report({*replica_failure_, reason.empty() ? why.message() : reason, status_.staleness_ms(), 0});
  } else
    report({o.reported && !o.replica ? follower_event::kind::still_disconnected
                                     : follower_event::kind::disconnected,
            conn_.last_error().empty() ? why.message() : conn_.last_error(), status_.staleness_ms(),
            0});
  o.reported = true;
  o.replica = replica;
  o.next_report = now + outage_report_ms;
}

void fleet_follower::run() {
  using clock = std::chrono::steady_clock;
  outage o;
  auto next_poll = clock::now() + options_.poll_interval;
  auto next_prune = clock::now();
  while (!stopping_) {
    if (!conn_.connected()) {
      if (!reconnect(o))
        continue;
      next_poll = clock::now() + options_.poll_interval;
    }
    const auto until_poll =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - clock::now());
    wait_for_input(std::clamp(until_poll, std::chrono::milliseconds(0), staleness_tick));
    if (stopping_)
      break;
    auto notes = conn_.take_notifications();
    bool ok = static_cast<bool>(notes);
    bool due = clock::now() >= next_poll;
    if (ok)
      for (const auto& seq : *notes)
        due = due || to_int(seq) > status_.applied_seq();
    if (ok && due) {
      next_poll = clock::now() + options_.poll_interval;
      ok = static_cast<bool>(catch_up());
    }
    if (ok && clock::now() >= next_prune) {
      next_prune = clock::now() + prune_interval;
      // A prune that waited too long for a writer's lock is tried again at the next one; only
      // a lost connection is the database's failure.
      ok = prune_log(conn_, options_.log_retention) || conn_.connected();
    }
    if (!ok) { // reconnect, and re-check the schema, from scratch
      status_.set_connected(false);
      conn_.close();
    }
    check_staleness();
  }
}

} // namespace tokengate::store
