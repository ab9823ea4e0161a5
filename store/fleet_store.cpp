#include "store/fleet_store.hpp"

namespace tokengate::store {
namespace {

constexpr std::size_t max_pending = 100'000;

} // namespace

// Once the database has committed, the write stands, whatever the replica says: its failure is
// `replica_behind`, not a failed write.
boost::system::error_code fleet_store::behind(std::string_view id,
                                              boost::system::error_code why) const {
  if (on_replica_failure_)
    on_replica_failure_(id, why);
  return errc::replica_behind;
}

result<void> fleet_store::put(const token_record& record, std::string_view marker) {
  if (auto committed = primary_.put(record, marker); !committed)
    return committed;
  if (auto copied = replica_.put(record, marker); !copied)
    return behind(record.id, copied.error());
  return {};
}

result<void> fleet_store::put_many(std::span<const token_record> records) {
  if (auto committed = primary_.put_many(records); !committed)
    return committed;
  if (auto copied = replica_.put_many(records); !copied)
    return behind({}, copied.error());
  return {};
}

result<bool> fleet_store::erase(std::string_view id) {
  auto erased = primary_.erase(id);
  if (!erased)
    return erased;
  if (auto copied = replica_.erase(id); !copied)
    return {boost::system::in_place_error, behind(id, copied.error())};
  return *erased;
}

result<void> fleet_store::replace(const token_record& record, const token_record& expected) {
  if (auto committed = primary_.replace(record, expected); !committed)
    return committed;
  if (auto copied = replica_.put(record); !copied)
    return behind(record.id, copied.error());
  return {};
}

result<void> fleet_store::erase_if(const token_record& expected) {
  if (auto committed = primary_.erase_if(expected); !committed)
    return committed;
  if (auto copied = replica_.erase(expected.id); !copied)
    return behind(expected.id, copied.error());
  return {};
}

// The follower later applies the same change from the log; finding the replica already equal,
// it changes nothing, as after this sidecar's own writes.
result<std::optional<replicated_change>> fleet_store::refresh(std::string_view id) {
  auto current = primary_.get(id);
  if (!current)
    return current.error();
  auto held = replica_.get(id);
  if (!held)
    return held.error();
  replicated_change change{std::string(id), std::nullopt, std::move(*current)};
  if (*held)
    change.previous = (*held)->value_digest;
  if (change.current) {
    if (auto copied = replica_.put(*change.current); !copied)
      return copied.error();
  } else if (auto erased = replica_.erase(id); !erased)
    return erased.error();
  return std::optional<replicated_change>{std::move(change)};
}

result<void> fleet_store::write_last_used(std::span<const usage> notes) {
  auto local = replica_.write_last_used(notes);
  std::lock_guard lock(pending_mutex_);
  for (const auto& n : notes) {
    auto& at = pending_[n.id];
    at = std::max(at, n.at);
  }
  std::vector<usage> batch;
  batch.reserve(pending_.size());
  for (const auto& [id, at] : pending_)
    batch.push_back({id, at});
  // Bounded: past that many ids in an outage they are dropped (the replica keeps them all).
  if (primary_.write_last_used(batch) || pending_.size() > max_pending)
    pending_.clear();
  return local;
}

result<bool> fleet_store::has_marker(std::string_view marker) const {
  auto shared = primary_.has_marker(marker);
  if (shared)
    return shared;
  return replica_.has_marker(marker);
}

} // namespace tokengate::store
