// A fleet follower's snapshot: every token from one consistent read of the database merged
// into the replica (a sidecar joining, or one whose log position was pruned).
#include "store/fleet_follower.hpp"

#include "store/pg_store.hpp"
#include "store/replica_merge.hpp"

namespace tokengate::store {

namespace {

constexpr std::size_t snapshot_page_size = 10'000;

replica_batch meta_only(std::vector<std::pair<std::string, std::string>> meta) {
  replica_batch b;
  b.meta = std::move(meta);
  return b;
}

} // namespace

// Reads the open snapshot cursor to its end, merging each page into the replica (ids in byte
// order on both sides). Returns how many tokens the database holds.
result<std::size_t> fleet_follower::merge_snapshot() {
  std::string done_upto; // every replica id <= this one is settled
  std::size_t total = 0;
  for (bool last = false; !last;) {
    auto rows = conn_.exec("FETCH " + std::to_string(snapshot_page_size) + " FROM snap");
    if (!rows)
      return rows.error();
    last = rows->size() < snapshot_page_size;
    snapshot_page page;
    for (const auto& row : *rows) {
      auto r = record_from_row(row);
      if (!r)
        return r.error();
      page.emplace(r->id, std::move(*r));
    }
    total += page.size();
    const std::string upto = page.empty() ? done_upto : page.rbegin()->first;
    auto held = held_in(replica_, done_upto, upto, last, snapshot_page_size);
    if (!held) {
      replica_failure_ = follower_event::kind::replica_read_failed;
      return held.error();
    }
    replica_batch batch;
    std::vector<replicated_change> changes;
    merge_page(page, *held, batch, changes);
    if (auto applied = apply_changes(std::move(changes), std::move(batch)); !applied)
      return applied.error();
    done_upto = upto;
  }
  return total;
}

// Every token from one consistent read (a repeatable-read transaction) replaces the replica's.
result<void> fleet_follower::snapshot() {
  // Until it completes, the replica does not claim to be in sync with any database.
  if (auto reset = replica_.apply(meta_only({{"database_id", ""}})); !reset) {
    replica_failure_ = follower_event::kind::replica_write_failed;
    return reset;
  }
  auto body = [&]() -> result<log_state> {
    auto state = read_state();
    if (!state)
      return state.error();
    if (auto d = conn_.exec("DECLARE snap NO SCROLL CURSOR FOR SELECT " +
                            std::string(record_columns) + " FROM tokengate_tokens ORDER BY id");
        !d)
      return d.error();
    auto total = merge_snapshot();
    if (!total)
      return total.error();
    report({follower_event::kind::snapshot, {}, 0, *total});
    return state;
  };
  if (auto begun = conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !begun)
    return begun.error();
  auto state = body();
  if (!state) {
    if (conn_.connected())
      (void)conn_.exec("ROLLBACK");
    return state.error();
  }
  if (auto ended = conn_.exec("COMMIT"); !ended)
    return ended.error();
  status_.set_applied(state->last_seq);
  auto noted = replica_.apply(meta_only(
      {{"database_id", state->database_id}, {"applied_seq", std::to_string(state->last_seq)}}));
  if (!noted)
    replica_failure_ = follower_event::kind::replica_write_failed;
  return noted;
}

} // namespace tokengate::store
