#pragma once

#include "store/token_store.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/rate_window.hpp"
#include "tokenapi/rfc3339.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

struct token;

/// What the request path needs to know of a live token. Immutable once published, except the
/// last-use note, which is kept in memory and written to the store in the background.
struct auth_entry {
  std::string id;
  std::string name;
  permission_set permissions;
  std::string permissions_header; ///< comma-separated names, for X-Token-Permissions
  std::vector<cidr_block> allowed_cidr_blocks;
  std::int64_t expires_at = std::numeric_limits<std::int64_t>::max(); ///< unix seconds
  mutable std::atomic<std::int64_t> last_used{0};                     ///< unix seconds, 0: never
  mutable std::atomic<bool> usage_queued{false};

  /// What only some tokens have: a rotation's overlap, a rate limit, an expiry to warn of. Kept
  /// apart, so that a token with none of them costs one pointer.
  struct lifecycle_state {
    /// The value a rotation replaced, also indexed under its digest until previous_expires_at.
    store::digest previous_digest{};
    std::int64_t previous_expires_at = 0;                    ///< unix seconds; 0: none
    mutable std::atomic<std::int64_t> previous_last_used{0}; ///< unix seconds, 0: never
    /// The rate limit (0 requests: none) and its count, shared by the entries that replace
    /// this one, so a change of the token never resets the count.
    std::uint32_t rate_requests = 0;
    std::uint32_t rate_seconds = 0;
    std::shared_ptr<rate_window> rate;
    /// The day (unix seconds / 86400) an expiry warning was last logged for this token.
    mutable std::atomic<std::int64_t> expiry_warned_day{0};
  };
  std::unique_ptr<lifecycle_state> life; ///< null: none of the above

  [[nodiscard]] static std::shared_ptr<auth_entry> from(const token& t);
  [[nodiscard]] bool allows(const ip_address& client) const noexcept;
  [[nodiscard]] bool has_previous() const noexcept {
    return life && life->previous_expires_at != 0;
  }
  /// Whether `d` is the digest of this token's replaced value (within its overlap or not).
  [[nodiscard]] bool is_previous(const store::digest& d) const noexcept {
    return has_previous() && life->previous_digest == d;
  }
  [[nodiscard]] std::uint32_t rate_requests() const noexcept {
    return life ? life->rate_requests : 0;
  }
  [[nodiscard]] std::uint32_t rate_seconds() const noexcept {
    return life ? life->rate_seconds : 0;
  }
  /// Takes over what `before` (the entry this one replaces) noted in memory: last uses, the
  /// rate count, the expiry warning's day.
  void carry_over(const auth_entry& before);
  /// Counts a request at `now` against the rate limit; always allowed without one.
  [[nodiscard]] rate_window::outcome take_rate(timestamp now) const noexcept {
    if (!life || !life->rate)
      return {};
    return life->rate->take(life->rate_requests, life->rate_seconds,
                            now.time_since_epoch().count());
  }
};

/// Why a key was let through or not. Values, never exceptions.
enum class verdict : std::uint8_t {
  allow,
  missing_key,         ///< 401
  malformed_key,       ///< 401: wrong shape or checksum, refused without a lookup
  unknown_key,         ///< 401, also a replaced value past its overlap
  expired_key,         ///< 401
  address_not_allowed, ///< 403: outside the token's allowedCIDRBlocks
  missing_permission,  ///< 403
  stale_tokens,        ///< 401: cut off from the fleet's database longer than allowed
};

struct decision {
  verdict outcome = verdict::missing_key;
  std::shared_ptr<const auth_entry> token; ///< set for every verdict past unknown_key
  permission_set missing;                  ///< for missing_permission
  /// The key is the token's replaced value, within its overlap (token->previous_expires_at).
  bool previous_value = false;

  [[nodiscard]] bool allowed() const noexcept { return outcome == verdict::allow; }
  /// 200 for allow, else 401 or 403.
  [[nodiscard]] unsigned status() const noexcept;
  /// The message a refusal answers with (never the key), e.g. "missing permission: AlertRead".
  [[nodiscard]] std::string message(const ip_address& client) const;
};

/// The in-memory index of live tokens by value digest, and the authorization decision.
///
/// Every live token is here (the service loads them at start-up and publishes every change
/// before it answers), so deciding never reads the store. Thread-safe: readers take a shared
/// lock on one of 64 shards; writers replace entries whole.
class authorizer {
public:
  /// Decides on a request's key (nullopt: no X-API-Key header) from `client` needing all of
  /// `required`. An authenticated key's use at `now` is noted for lastUsedAt.
  [[nodiscard]] decision decide(std::optional<std::string_view> key, const ip_address& client,
                                permission_set required, timestamp now) const;

  /// Publishes `entry` under `d`, and under its previous_digest when it has one, dropping
  /// `replaced` (the digest before a rotation) if given, unless it is the entry's previous
  /// value, and the previous value of the entry it replaces, unless still the entry's.
  void publish(const store::digest& d, std::shared_ptr<const auth_entry> entry,
               const store::digest* replaced = nullptr);
  /// Removes the entry under `d`, and its previous value's digest with it.
  void remove(const store::digest& d);
  [[nodiscard]] std::shared_ptr<const auth_entry> find(const store::digest& d) const;
  [[nodiscard]] std::size_t size() const;

  /// While on, every key is refused (verdict::stale_tokens): max_staleness_ms has passed.
  void fail_closed(bool on) noexcept { closed_.store(on, std::memory_order_relaxed); }

  /// How many live tokens expire after `now` and no later than `now + within`. Walks the
  /// whole index: for a metrics scrape, not the request path.
  [[nodiscard]] std::size_t count_expiring(timestamp now, std::chrono::seconds within) const;

  /// The last-use notes gathered since the previous call, each token at most once.
  [[nodiscard]] std::vector<store::usage> take_usage();

private:
  struct digest_hash {
    using is_avalanching = void; // SHA-256 bytes are uniform already
    std::size_t operator()(const store::digest& d) const noexcept {
      std::size_t h;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  struct shard {
    mutable std::shared_mutex mutex;
    boost::unordered_flat_map<store::digest, std::shared_ptr<const auth_entry>, digest_hash> map;
  };
  static constexpr std::size_t shard_count = 64;

  shard& shard_for(const store::digest& d) const noexcept { return shards_[d[31] % shard_count]; }
  void note_use(const std::shared_ptr<const auth_entry>& e, timestamp now) const;
  void erase(const store::digest& d);

  mutable std::array<shard, shard_count> shards_;
  std::atomic<bool> closed_{false};
  mutable std::mutex usage_mutex_;
  mutable std::vector<std::shared_ptr<const auth_entry>> usage_queue_;
};

} // namespace tokengate::tokenapi
