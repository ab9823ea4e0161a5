#pragma once

#include "store/token_store.hpp"
#include "tokenapi/auth_entry.hpp"
#include "tokenapi/digest_table.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/plain_record.hpp"
#include "tokenapi/rate_window.hpp"
#include "tokenapi/rfc3339.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

struct token;

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
///
/// Memory: each shard is a flat open-addressing table (8 bytes a slot) over records of the
/// digest and a 32-byte entry. Tokens loaded at start-up (and those a fleet's snapshot adds)
/// live in chunks with their id and name in one text arena and their grant interned; a record
/// replaced or removed later stays in its chunk (a decision may still point at it), so that
/// waste is bounded by the tokens loaded so. Tokens published one at a time (and those with a
/// lifecycle) are entries of their own, freed when replaced and no longer used. A replaced value
/// within its overlap is a record of its own holding the same entry.
class authorizer {
public:
  authorizer();
  authorizer(const authorizer&) = delete;
  authorizer& operator=(const authorizer&) = delete;

  /// Decides on a request's key (nullopt: no X-API-Key header) from `client` needing all of
  /// `required`. An authenticated key's use at `now` is noted for lastUsedAt.
  [[nodiscard]] decision decide(std::optional<std::string_view> key, const ip_address& client,
                                permission_set required, timestamp now) const;

  /// Start-up: adds `tokens` (each under its value_digest), replacing any entry of the same
  /// digest. May be called page after page; compact (see the class comment).
  void load(std::span<const token> tokens);
  /// The same for tokens without a lifecycle read by `read_plain_record`, whose CIDR blocks
  /// are in `blocks`: at start-up, and for the tokens a fleet's snapshot adds (a record loaded
  /// so and later replaced stays in its chunk, so that waste is bounded by the tokens added).
  void load(std::span<const plain_token> tokens, std::span<const cidr_block> blocks);

  /// Publishes `entry` under `d`, and under its previous_digest when it has one, dropping
  /// `replaced` (the digest before a rotation) if given, unless it is the entry's previous
  /// value, and the previous value of the entry it replaces, unless still the entry's.
  void publish(const store::digest& d, std::shared_ptr<const auth_entry> entry,
               const store::digest* replaced = nullptr);
  /// Removes the entry under `d`, and its previous value's digest with it.
  void remove(const store::digest& d);
  /// Removes every entry of the tokens with these ids, each value of theirs. Walks the whole
  /// index: for when a token's digest is not known (a fleet's replica that cannot be read).
  void remove_tokens(std::span<const std::string> ids);
  /// The same for the tokens whose id `which` picks.
  void remove_tokens_if(const std::function<bool(std::string_view id)>& which);
  [[nodiscard]] std::shared_ptr<const auth_entry> find(const store::digest& d) const;
  [[nodiscard]] std::size_t size() const;

  /// While on, every key is refused (verdict::stale_tokens): max_staleness_ms has passed.
  void fail_closed(bool on) noexcept { closed_.store(on, std::memory_order_relaxed); }
  /// From this wall-clock time (Unix milliseconds) on, every key is refused as when failing
  /// closed, until it is moved: max_staleness_ms after the last sync. Unset: no bound.
  void fresh_until(std::int64_t unix_ms) noexcept {
    fresh_until_ms_.store(unix_ms, std::memory_order_relaxed);
  }
  /// Whether `fresh_until` has passed (a clock read only when it is set).
  [[nodiscard]] bool past_fresh() const noexcept {
    const auto until = fresh_until_ms_.load(std::memory_order_relaxed);
    return until != std::numeric_limits<std::int64_t>::max() &&
           std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
                   .count() >= until;
  }

  /// How many live tokens expire after `now` and no later than `now + within`. Walks the
  /// whole index: for a background thread, never an event loop; the server refreshes
  /// tokengate_tokens_expiring with it every few seconds.
  [[nodiscard]] std::size_t count_expiring(timestamp now, std::chrono::seconds within) const;

  /// The last-use notes gathered since the previous call, each token at most once. The
  /// caller writes them, and says so when it could not: usage_not_written().
  [[nodiscard]] std::vector<store::usage> take_usage();
  /// The notes the last take_usage() gave could not be written (the store refuses writes):
  /// their tokens are queued again, so the next take gives their latest use, none lost.
  void usage_not_written();
  /// They were written: the tokens they came from are let go.
  void usage_written();

private:
  // A loaded token: its digest beside its entry, in chunks that never move.
  struct loaded_record {
    store::digest digest{};
    auth_entry entry;
  };
  // A published token: shared with the decisions that hold it.
  struct published_record {
    store::digest digest{};
    std::shared_ptr<const auth_entry> entry;
  };
  static bool is_previous(const published_record& r) noexcept {
    return r.entry && r.entry->has_previous() && r.entry->previous_digest() == r.digest;
  }
  static constexpr std::uint32_t published_bit = 0x80000000;
  static constexpr std::size_t chunk_size = 512;
  static constexpr std::size_t text_block = 16384;

  struct shard;
  struct key_of {
    const shard* owner = nullptr;
    const store::digest& operator()(std::uint32_t value) const noexcept;
  };
  struct shard {
    mutable std::shared_mutex mutex;
    digest_table<key_of> table{key_of{this}};
    std::vector<std::unique_ptr<loaded_record[]>> chunks;
    std::size_t loaded = 0;
    std::vector<std::unique_ptr<char[]>> text;
    std::size_t text_used = text_block;
    std::vector<published_record> published;
    std::vector<std::uint32_t> free_published;
    std::size_t previous_records = 0; ///< published records of a replaced value's digest

    const loaded_record& record(std::uint32_t i) const noexcept {
      return chunks[i / chunk_size][i % chunk_size];
    }
    void add_loaded(const plain_token& t, const grant* g);
    const char* keep_text(std::string_view id, std::string_view name);
    void put(const store::digest& d, std::uint32_t value);
    void add_published(const store::digest& d, std::shared_ptr<const auth_entry> entry);
    void drop(std::optional<std::uint32_t> value) noexcept;
  };
  static constexpr std::size_t shard_count = 64;

  shard& shard_for(const store::digest& d) const noexcept { return shards_[d[31] % shard_count]; }
  const grant* intern(permission_set permissions, std::span<const cidr_block> blocks);
  // Adds a token without a lifecycle; `g` is the grant of the one added before, reused while
  // tokens side by side grant the same.
  void add_plain(const plain_token& t, std::span<const cidr_block> blocks, const grant*& g);
  void note_use(const std::shared_ptr<const auth_entry>& e, timestamp now) const;
  void erase(const store::digest& d);

  mutable std::array<shard, shard_count> shards_;
  std::atomic<bool> closed_{false};
  std::atomic<std::int64_t> fresh_until_ms_{std::numeric_limits<std::int64_t>::max()};
  std::mutex grants_mutex_;
  std::deque<grant> grants_;
  /// Grants by a hash of their permissions and blocks (see grant_key in authorizer.cpp).
  boost::unordered_flat_map<std::uint64_t, std::vector<const grant*>> grant_index_;
  mutable std::mutex usage_mutex_;
  mutable std::vector<std::shared_ptr<const auth_entry>> usage_queue_;
  /// The tokens of the last take_usage() until it is known whether its notes were written:
  /// touched only by the one thread that flushes them (the token API's, see token_service).
  std::vector<std::shared_ptr<const auth_entry>> usage_taken_;
};

} // namespace tokengate::tokenapi
