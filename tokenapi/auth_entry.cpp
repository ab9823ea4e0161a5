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

// An entry with its own text and grant, for tokens published one at a time.
struct owned_entry {
  auth_entry entry;
  std::string text;
  grant own_grant;
};

} // namespace

void auth_entry::set(const token& t, const char* text, std::string_view id, std::string_view name,
                     const grant* g) noexcept {
  text_ = text;
  id_size_ = static_cast<std::uint16_t>(id.size());
  name_size_ = static_cast<std::uint16_t>(name.size());
  grant_ = g;
  expires_at_ = t.expires_at ? to_seconds(t.expires_at->time_since_epoch().count()) : never;
  last_used_ = t.last_used_at ? to_seconds(t.last_used_at->time_since_epoch().count()) : 0;
}

std::shared_ptr<auth_entry> auth_entry::from(const token& t) {
  auto owned = std::make_shared<owned_entry>();
  const auto id = std::string_view(t.id).substr(0, 0xffff);
  const auto name = std::string_view(t.name).substr(0, 0xffff);
  owned->text.reserve(id.size() + name.size());
  owned->text.append(id).append(name);
  owned->own_grant = {t.permissions, t.permissions.join(","), t.allowed_cidr_blocks};
  owned->entry.set(t, owned->text.data(), id, name, &owned->own_grant);
  return std::shared_ptr<auth_entry>(owned, &owned->entry);
}

} // namespace tokengate::tokenapi
