#include "tokenapi/authorizer.hpp"

#include "tokenapi/token.hpp"
#include "tokenapi/token_value.hpp"

#include <algorithm>

namespace tokengate::tokenapi {

std::shared_ptr<auth_entry> auth_entry::from(const token& t) {
  auto e = std::make_shared<auth_entry>();
  e->id = t.id;
  e->name = t.name;
  e->permissions = t.permissions;
  e->permissions_header = t.permissions.join(",");
  e->allowed_cidr_blocks = t.allowed_cidr_blocks;
  if (t.expires_at)
    e->expires_at = t.expires_at->time_since_epoch().count();
  if (t.last_used_at)
    e->last_used = t.last_used_at->time_since_epoch().count();
  if (!(t.previous_digest && t.previous_expires_at) && !t.rate_limit && !t.expires_at)
    return e;
  e->life = std::make_unique<lifecycle_state>();
  auto& life = *e->life;
  if (t.previous_digest && t.previous_expires_at) {
    life.previous_digest = *t.previous_digest;
    life.previous_expires_at = t.previous_expires_at->time_since_epoch().count();
    if (t.previous_last_used_at)
      life.previous_last_used = t.previous_last_used_at->time_since_epoch().count();
  }
  if (t.rate_limit) {
    life.rate_requests = t.rate_limit->requests;
    life.rate_seconds = t.rate_limit->per_seconds;
    life.rate = std::make_shared<rate_window>();
  }
  return e;
}

void auth_entry::carry_over(const auth_entry& before) {
  last_used = std::max(last_used.load(), before.last_used.load());
  if (!life || !before.life)
    return;
  if (has_previous() && before.is_previous(life->previous_digest))
    life->previous_last_used =
        std::max(life->previous_last_used.load(), before.life->previous_last_used.load());
  if (life->rate && before.life->rate)
    life->rate = before.life->rate;
  life->expiry_warned_day = before.life->expiry_warned_day.load();
}

bool auth_entry::allows(const ip_address& client) const noexcept {
  return allowed_cidr_blocks.empty() ||
         std::any_of(allowed_cidr_blocks.begin(), allowed_cidr_blocks.end(),
                     [&](const cidr_block& b) { return b.contains(client); });
}

unsigned decision::status() const noexcept {
  switch (outcome) {
  case verdict::allow:
    return 200;
  case verdict::address_not_allowed:
  case verdict::missing_permission:
    return 403;
  default:
    return 401;
  }
}

std::string decision::message(const ip_address& client) const {
  switch (outcome) {
  case verdict::allow:
    return "allowed";
  case verdict::missing_key:
    return "missing X-API-Key header";
  case verdict::malformed_key:
    return "malformed API key";
  case verdict::unknown_key:
    return "invalid API key";
  case verdict::expired_key:
    return "API key has expired";
  case verdict::address_not_allowed:
    return "this API key may not be used from " + client.to_string();
  case verdict::stale_tokens:
    return "tokens cannot be checked: this sidecar has lost its token database for too long";
  case verdict::missing_permission:
    return "API key lacks the permission" + std::string(missing.size() > 1 ? "s " : " ") +
           missing.join(", ");
  }
  return "denied";
}

decision authorizer::decide(std::optional<std::string_view> key, const ip_address& client,
                            permission_set required, timestamp now) const {
  decision d;
  if (!key) {
    d.outcome = verdict::missing_key;
    return d;
  }
  if (!well_formed(*key)) {
    d.outcome = verdict::malformed_key;
    return d;
  }
  if (closed_.load(std::memory_order_relaxed)) {
    d.outcome = verdict::stale_tokens;
    return d;
  }
  const auto digest = digest_of(*key);
  d.token = find(digest);
  if (!d.token) {
    d.outcome = verdict::unknown_key;
    return d;
  }
  const auto seconds = now.time_since_epoch().count();
  d.previous_value = d.token->is_previous(digest);
  if (d.previous_value && d.token->life->previous_expires_at <= seconds) {
    // Past its overlap, a replaced value is as unknown as one replaced without.
    d = {};
    d.outcome = verdict::unknown_key;
    return d;
  }
  if (d.token->expires_at <= seconds) {
    d.outcome = verdict::expired_key;
    return d;
  }
  if (d.previous_value)
    d.token->life->previous_last_used.store(seconds, std::memory_order_relaxed);
  note_use(d.token, now);
  if (!d.token->allows(client)) {
    d.outcome = verdict::address_not_allowed;
    return d;
  }
  d.missing = required.minus(d.token->permissions);
  d.outcome = d.missing.empty() ? verdict::allow : verdict::missing_permission;
  return d;
}

void authorizer::note_use(const std::shared_ptr<const auth_entry>& e, timestamp now) const {
  const auto seconds = now.time_since_epoch().count();
  if (e->last_used.load(std::memory_order_relaxed) == seconds)
    return;
  e->last_used.store(seconds, std::memory_order_relaxed);
  if (e->usage_queued.exchange(true, std::memory_order_acq_rel))
    return;
  std::lock_guard lock(usage_mutex_);
  usage_queue_.push_back(e);
}

void authorizer::publish(const store::digest& d, std::shared_ptr<const auth_entry> entry,
                         const store::digest* replaced) {
  const auto before = find(replaced ? *replaced : d);
  const auto keeps = [&](const store::digest& x) { return x == d || entry->is_previous(x); };
  if (replaced && !keeps(*replaced))
    erase(*replaced);
  if (before && before->has_previous() && !keeps(before->life->previous_digest))
    erase(before->life->previous_digest);
  if (entry->has_previous()) {
    const auto& previous = entry->life->previous_digest;
    auto& p = shard_for(previous);
    std::unique_lock lock(p.mutex);
    p.map.insert_or_assign(previous, entry);
  }
  auto& s = shard_for(d);
  std::unique_lock lock(s.mutex);
  s.map.insert_or_assign(d, std::move(entry));
}

void authorizer::remove(const store::digest& d) {
  const auto entry = find(d);
  if (entry && entry->has_previous() && entry->life->previous_digest != d)
    erase(entry->life->previous_digest);
  erase(d);
}

void authorizer::erase(const store::digest& d) {
  auto& s = shard_for(d);
  std::unique_lock lock(s.mutex);
  s.map.erase(d);
}

std::shared_ptr<const auth_entry> authorizer::find(const store::digest& d) const {
  auto& s = shard_for(d);
  std::shared_lock lock(s.mutex);
  auto it = s.map.find(d);
  return it == s.map.end() ? nullptr : it->second;
}

std::size_t authorizer::count_expiring(timestamp now, std::chrono::seconds within) const {
  const auto from = now.time_since_epoch().count();
  const auto to = from + within.count();
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mutex);
    for (const auto& [d, e] : s.map) // a replaced value's digest names the same token: skip it
      n += e->expires_at > from && e->expires_at <= to && !e->is_previous(d);
  }
  return n;
}

std::size_t authorizer::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mutex);
    n += s.map.size();
    for (const auto& [d, e] : s.map) // a replaced value's digest is not a token of its own
      n -= e->is_previous(d);
  }
  return n;
}

std::vector<store::usage> authorizer::take_usage() {
  std::vector<std::shared_ptr<const auth_entry>> queued;
  {
    std::lock_guard lock(usage_mutex_);
    queued.swap(usage_queue_);
  }
  std::vector<store::usage> notes;
  notes.reserve(queued.size());
  for (const auto& e : queued) {
    e->usage_queued.store(false, std::memory_order_release);
    notes.push_back({e->id, e->last_used.load(std::memory_order_relaxed)});
  }
  return notes;
}

} // namespace tokengate::tokenapi
