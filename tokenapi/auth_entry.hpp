#pragma once

#include "store/token_store.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/rate_window.hpp"
#include "tokenapi/rfc3339.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

struct token;

/// Unix seconds of `t`, nullopt for none.
[[nodiscard]] std::optional<std::int64_t> unix_seconds(const std::optional<timestamp>& t) noexcept;

/// What a token lets its holder do: shared by every token granting the same (interned when
/// the authorizer loads the store), so a million tokens with a few distinct grants hold a few.
struct grant {
  permission_set permissions;
  std::string permissions_header; ///< comma-separated names, for X-Token-Permissions
  std::vector<cidr_block> allowed_cidr_blocks;

  [[nodiscard]] bool allows(const ip_address& client) const noexcept;
};

/// What few tokens have: the value a rotation replaced (within its overlap) and a rate limit.
struct lifecycle {
  /// The value a rotation replaced, also indexed under its digest until previous_expires_at.
  store::digest previous_digest{};
  std::int64_t previous_expires_at = 0;                    ///< unix seconds; 0: none
  mutable std::atomic<std::int64_t> previous_last_used{0}; ///< unix seconds, 0: never
  /// The rate limit (0 requests: none) and its count, shared by the entries that replace this
  /// one with the same limit, so only a change of the limit itself resets the count.
  std::uint32_t rate_requests = 0;
  std::uint32_t rate_seconds = 0;
  std::shared_ptr<rate_window> rate;
};

/// The grant of a token with a lifecycle: its own, never interned.
struct grant_with_lifecycle : grant {
  lifecycle life;
};

/// What the request path needs to know of a live token, in 32 bytes: the id and name are one
/// piece of text held elsewhere, the grant is shared, and the lifecycle (rotation overlap, rate
/// limit) is there only for the tokens that have one. Immutable once published, except the
/// notes kept in memory (last use, expiry warning) and the rate count.
class auth_entry {
public:
  auth_entry() = default;
  // The text and grant are held elsewhere: a copy could outlive them.
  auth_entry(const auth_entry&) = delete;
  auth_entry& operator=(const auth_entry&) = delete;

  /// A new entry owning a copy of `t`'s id, name, grant and lifecycle.
  [[nodiscard]] static std::shared_ptr<auth_entry> from(const token& t);
  /// Whether `t` needs a lifecycle (an overlap or a rate limit): such tokens are never interned.
  [[nodiscard]] static bool has_lifecycle(const token& t) noexcept;

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
  /// True once per `day` (unix seconds / 86400): whether to log the expiry warning now.
  [[nodiscard]] bool first_expiry_warning_on(std::int64_t day) const noexcept;

  /// The replaced value within its overlap.
  [[nodiscard]] bool has_previous() const noexcept {
    return life() != nullptr && life()->previous_expires_at != 0;
  }
  [[nodiscard]] const store::digest& previous_digest() const noexcept;
  /// Whether `d` is the digest of this token's replaced value (within its overlap or not).
  [[nodiscard]] bool is_previous(const store::digest& d) const noexcept {
    return has_previous() && previous_digest() == d;
  }
  [[nodiscard]] std::int64_t previous_expires_at() const noexcept {
    return life() ? life()->previous_expires_at : 0;
  }
  [[nodiscard]] std::int64_t previous_last_used() const noexcept {
    return life() ? life()->previous_last_used.load(std::memory_order_relaxed) : 0;
  }
  void set_previous_last_used(std::int64_t seconds) const noexcept {
    if (life())
      life()->previous_last_used.store(seconds, std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint32_t rate_requests() const noexcept {
    return life() ? life()->rate_requests : 0;
  }
  [[nodiscard]] std::uint32_t rate_seconds() const noexcept {
    return life() ? life()->rate_seconds : 0;
  }
  /// Counts a request at `now` against the rate limit; always allowed without one.
  [[nodiscard]] rate_window::outcome take_rate(timestamp now) const noexcept {
    if (!life() || !life()->rate)
      return {};
    return life()->rate->take(life()->rate_requests, life()->rate_seconds,
                              now.time_since_epoch().count());
  }

  /// Takes over what `before` (the entry this one replaces) noted in memory: last uses, the
  /// rate count, the expiry warning's day. Before this entry is published.
  void carry_over(const auth_entry& before);

private:
  friend class authorizer;
  static const grant no_grant;
  // Unix seconds in 32 bits (until 2106): an expiry past that is never.
  static constexpr std::uint32_t never = 0xffffffff;
  static std::uint32_t to_seconds(std::int64_t s) noexcept {
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 0, never));
  }
  /// `expires_at` and `last_used` in unix seconds, nullopt for never.
  void set(std::optional<std::int64_t> expires_at, std::optional<std::int64_t> last_used,
           const char* text, std::string_view id, std::string_view name, const grant* g) noexcept;
  // The lifecycle lives beside the grant of an entry made by from(), when it has one.
  [[nodiscard]] const lifecycle* life() const noexcept {
    return has_life_ ? &static_cast<const grant_with_lifecycle*>(grant_)->life : nullptr;
  }

  const char* text_ = ""; ///< the id, then the name
  const grant* grant_ = &no_grant;
  std::uint32_t expires_at_ = never;
  mutable std::uint32_t last_used_ = 0;
  std::uint16_t id_size_ = 0;
  std::uint16_t name_size_ = 0;
  mutable std::uint8_t usage_queued_ = 0;
  bool has_life_ = false;
  mutable std::uint16_t expiry_warned_day_ = 0;
};

} // namespace tokengate::tokenapi
