// A fleet follower's snapshot: every token from one consistent read of the database merged
// into the replica (a sidecar joining, or one whose log position was pruned).
#include "store/fleet_follower.hpp"

#include "store/pg_store.hpp"

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
  for (bool last = false, first = true; !last; first = false) {
    auto rows = conn_.exec("FETCH " + std::to_string(snapshot_page_size) + " FROM snap");
    if (!rows)
      return rows.error();
    last = rows->size() < snapshot_page_size;
    snapshot_page page;
    for (const auto& row : *rows) {
      auto r = record_from_row(row);
      if (!r && r.error() != errc::corruption)
        return r.error();
      if (r) // a row held wrong serves no key: left out, as in the log (latest_in)
        page.emplace(r->id, std::move(*r));
    }
    total += page.size();
    id_range range{done_upto, std::nullopt}; // the last page: every id after done_upto
    if (!last) {                             // the page's last id, read or left out
      if (!rows->back()[0])
        return errc::corruption;
      range.upto = *rows->back()[0];
    }
    if (auto settled = settle_page(std::move(page), range, first); !settled)
      return settled.error();
    if (range.upto)
      done_upto = *range.upto;
  }
  return total;
}

// Makes the replica's ids in `range` equal to `page`, and publishes the changes to the sink. A
// page the replica cannot settle leaves the sink no key the page may have deleted or changed.
result<void> fleet_follower::settle_page(snapshot_page page, const id_range& range, bool first) {
  auto held = held_in(replica_, range.after, range.upto.value_or(range.after), !range.upto,
                      snapshot_page_size);
  if (!held) {
    // What the replica holds of these ids, and so what the page changes, is unknown.
    sink_.forget_range(range);
    dropped_ = dropped_ ? dropped_->hull(range) : range;
    replica_failure_ = follower_event::kind::replica_read_failed;
    return held.error();
  }
  replica_batch batch;
  // Until the snapshot completes, the replica claims to be in sync with no database.
  if (first)
    batch.meta.emplace_back("database_id", "");
  std::vector<replicated_change> changes;
  merge_page(page, *held, batch, changes, [this](std::string_view id) {
    return (dropped_ && dropped_->contains(id)) || withheld_.contains(id);
  });
  return apply_changes(std::move(changes), std::move(batch));
}

// Every token from one consistent read (a repeatable-read transaction) replaces the replica's.
result<void> fleet_follower::snapshot() {
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
    dropped_.reset(); // every page published what it, or the log, dropped again
    withheld_.clear();
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
