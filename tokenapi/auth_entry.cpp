#include "tokenapi/auth_entry.hpp"

#include "tokenapi/token.hpp"

#include <algorithm>

namespace tokengate::tokenapi {

const grant auth_entry::no_grant{};

// A loaded record (digest and entry) fills one cache line.
static_assert(sizeof(auth_entry) == 32);

bool grant::allows(const ip_address& client) const noexcept {
  return allowed_cidr_blocks.empty() ||
         std::any_of(allowed_cidr_blocks.begin(), allowed_cidr_blocks.end(),
                     [&](const cidr_block& b) { return b.contains(client); });
}

namespace {

// An entry with its own text, grant and lifecycle, for tokens published one at a time.
struct owned_entry {
  auth_entry entry;
  std::string text;
  grant_with_lifecycle own_grant;
};

} // namespace

std::optional<std::int64_t> unix_seconds(const std::optional<timestamp>& t) noexcept {
  if (!t)
    return std::nullopt;
  return t->time_since_epoch().count();
}

void auth_entry::set(std::optional<std::int64_t> expires_at, std::optional<std::int64_t> last_used,
                     const char* text, std::string_view id, std::string_view name,
                     const grant* g) noexcept {
  text_ = text;
  id_size_ = static_cast<std::uint16_t>(id.size());
  name_size_ = static_cast<std::uint16_t>(name.size());
  grant_ = g;
  expires_at_ = expires_at ? to_seconds(*expires_at) : never;
  last_used_ = last_used ? to_seconds(*last_used) : 0;
}

bool auth_entry::has_lifecycle(const token& t) noexcept {
  return (t.previous_digest && t.previous_expires_at) || t.rate_limit;
}

std::shared_ptr<auth_entry> auth_entry::from(const token& t) {
  auto owned = std::make_shared<owned_entry>();
  const auto id = std::string_view(t.id).substr(0, 0xffff);
  const auto name = std::string_view(t.name).substr(0, 0xffff);
  owned->text.reserve(id.size() + name.size());
  owned->text.append(id).append(name);
  auto& g = owned->own_grant;
  g.permissions = t.permissions;
  g.permissions_header = t.permissions.join(",");
  g.allowed_cidr_blocks = t.allowed_cidr_blocks;
  owned->entry.set(unix_seconds(t.expires_at), unix_seconds(t.last_used_at), owned->text.data(), id,
                   name, &g);
  owned->entry.has_life_ = has_lifecycle(t);
  if (t.previous_digest && t.previous_expires_at) {
    g.life.previous_digest = *t.previous_digest;
    g.life.previous_expires_at = t.previous_expires_at->time_since_epoch().count();
    if (t.previous_last_used_at)
      g.life.previous_last_used = t.previous_last_used_at->time_since_epoch().count();
  }
  if (t.rate_limit) {
    g.life.rate_requests = t.rate_limit->requests;
    g.life.rate_seconds = t.rate_limit->per_seconds;
    g.life.rate = std::make_shared<rate_window>();
  }
  return std::shared_ptr<auth_entry>(owned, &owned->entry);
}

const store::digest& auth_entry::previous_digest() const noexcept {
  static const store::digest none{};
  return life() ? life()->previous_digest : none;
}

bool auth_entry::first_expiry_warning_on(std::int64_t day) const noexcept {
  const auto today = static_cast<std::uint16_t>(std::clamp<std::int64_t>(day, 1, 0xffff));
  std::atomic_ref warned(expiry_warned_day_);
  auto seen = warned.load(std::memory_order_relaxed);
  return seen != today && warned.compare_exchange_strong(seen, today, std::memory_order_relaxed);
}

void auth_entry::carry_over(const auth_entry& before) {
  set_last_used(std::max(last_used(), before.last_used()));
  if (has_previous() && before.has_previous() && before.previous_digest() == previous_digest())
    set_previous_last_used(std::max(previous_last_used(), before.previous_last_used()));
  // The lifecycle is this entry's own (made by from()) and not yet shared: it may change.
  // The count goes on only under the same limit: a changed limit starts a fresh window (the
  // stored window number is in units of the old perSeconds).
  if (has_life_ && before.life() && before.life()->rate && life()->rate &&
      rate_requests() == before.rate_requests() && rate_seconds() == before.rate_seconds())
    const_cast<lifecycle*>(life())->rate = before.life()->rate;
  expiry_warned_day_ = std::atomic_ref(before.expiry_warned_day_).load(std::memory_order_relaxed);
}

} // namespace tokengate::tokenapi
