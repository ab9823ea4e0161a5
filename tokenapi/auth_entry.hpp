#pragma once

#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

struct token;

/// What a token lets its holder do: shared by every token granting the same (interned when
/// the authorizer loads the store), so a million tokens with a few distinct grants hold a few.
struct grant {
  permission_set permissions;
  std::string permissions_header; ///< comma-separated names, for X-Token-Permissions
  std::vector<cidr_block> allowed_cidr_blocks;

  [[nodiscard]] bool allows(const ip_address& client) const noexcept;
};

/// What the request path needs to know of a live token, in 32 bytes: the id and name are one
/// piece of text held elsewhere, the grant is shared. Immutable once published, except the
/// last-use note, which is kept in memory and written to the store in the background.
class auth_entry {
public:
  auth_entry() = default;
  // The text and grant are held elsewhere: a copy could outlive them.
  auth_entry(const auth_entry&) = delete;
  auth_entry& operator=(const auth_entry&) = delete;

  /// A new entry owning a copy of `t`'s id, name and grant.
  [[nodiscard]] static std::shared_ptr<auth_entry> from(const token& t);

  [[nodiscard]] std::string_view id() const noexcept { return {text_, id_size_}; }
  [[nodiscard]] std::string_view name() const noexcept { return {text_ + id_size_, name_size_}; }
  [[nodiscard]] permission_set permissions() const noexcept { return grant_->permissions; }
  [[nodiscard]] std::string_view permissions_header() const noexcept {
    return grant_->permissions_header;
  }
  [[nodiscard]] const std::vector<cidr_block>& allowed_cidr_blocks() const noexcept {
    return grant_->allowed_cidr_blocks;
  }
  /// Unix seconds; the largest value when the token never expires.
  [[nodiscard]] std::int64_t expires_at() const noexcept {
    return expires_at_ == never ? std::numeric_limits<std::int64_t>::max() : expires_at_;
  }
  [[nodiscard]] bool allows(const ip_address& client) const noexcept {
    return grant_->allows(client);
  }

  /// Unix seconds of the last use noted, 0: never. Any thread.
  [[nodiscard]] std::int64_t last_used() const noexcept {
    return std::atomic_ref(last_used_).load(std::memory_order_relaxed);
  }
  void set_last_used(std::int64_t seconds) const noexcept {
    std::atomic_ref(last_used_).store(to_seconds(seconds), std::memory_order_relaxed);
  }
  /// Marks the entry as waiting in the usage queue; false if it already was.
  [[nodiscard]] bool queue_usage() const noexcept {
    return std::atomic_ref(usage_queued_).exchange(1, std::memory_order_acq_rel) == 0;
  }
  void usage_taken() const noexcept {
    std::atomic_ref(usage_queued_).store(0, std::memory_order_release);
  }

private:
  friend class authorizer;
  static const grant no_grant;
  // Unix seconds in 32 bits (until 2106): an expiry past that is never.
  static constexpr std::uint32_t never = 0xffffffff;
  static std::uint32_t to_seconds(std::int64_t s) noexcept {
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 0, never));
  }
  void set(const token& t, const char* text, std::string_view id, std::string_view name,
           const grant* g) noexcept;

  const char* text_ = ""; ///< the id, then the name
  const grant* grant_ = &no_grant;
  std::uint32_t expires_at_ = never;
  mutable std::uint32_t last_used_ = 0;
  std::uint16_t id_size_ = 0;
  std::uint16_t name_size_ = 0;
  mutable std::uint8_t usage_queued_ = 0;
};

} // namespace tokengate::tokenapi
