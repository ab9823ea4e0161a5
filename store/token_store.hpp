#pragma once

#include "store/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::store {

/// SHA-256 of a token value. The store only ever sees digests, never values.
using digest = std::array<std::uint8_t, 32>;

/// One token as the store keeps it. The store does not interpret `payload`; the layer above
/// encodes the token's fields there. `last_used` lives apart from the record (see
/// `write_last_used`) and is filled in by reads.
struct token_record {
  std::string id;
  digest value_digest{};
  std::string payload;
  std::optional<std::int64_t> last_used; ///< unix seconds
};

/// A "this token was used at" note, written in the background.
struct usage {
  std::string id;
  std::int64_t at = 0; ///< unix seconds
};

/// One token as the source of truth now has it, copied into a store that lags it (a fleet's
/// replica): what the caller's view of the tokens must take in too.
struct replicated_change {
  std::string id;
  std::optional<digest> previous;      ///< the digest the copy held for `id`, if any
  std::optional<token_record> current; ///< nullopt: the token was deleted
  /// Part of a snapshot (a sidecar joining, or one whose log position was pruned): many
  /// changes at once, rather than one of the log's.
  bool from_snapshot = false;
};

/// The durable home of tokens: records by id, a digest index, and small markers.
///
/// Writes of records (`put`, `erase`, and the conditional `replace`, `erase_if`) are atomic
/// (record and index in one batch) and durable once they return. Reads see every write that has
/// returned. All functions are thread-safe.
///
/// A store that copies a source of truth (fleet mode) may fail a record write with
/// `errc::replica_behind`: the write was made there and stands, but reads here do not show it
/// until the copy catches up (see `replicated_change`).
class token_store {
public:
  virtual ~token_store() = default;

  /// The record with this id, or nullopt.
  [[nodiscard]] virtual result<std::optional<token_record>> get(std::string_view id) const = 0;

  /// The record whose value has this digest, or nullopt.
  [[nodiscard]] virtual result<std::optional<token_record>> find(const digest& d) const = 0;

  /// Inserts or replaces the record with `record.id`, indexing its digest and dropping the
  /// index of the digest it replaces. When `marker` is not empty, the marker is set in the same
  /// batch. `record.last_used` is ignored. Durable (synced) when it returns.
  [[nodiscard]] virtual result<void> put(const token_record& record,
                                         std::string_view marker = {}) = 0;

  /// Inserts or replaces many records in one atomic, durable batch: for bulk loads (tools,
  /// migrations), where a synced write per record would take hours.
  [[nodiscard]] virtual result<void> put_many(std::span<const token_record> records) = 0;

  /// Removes the record, its digest index and its usage. False when there was none. Durable.
  [[nodiscard]] virtual result<bool> erase(std::string_view id) = 0;

  /// Read-modify-write without losing a concurrent change (optimistic concurrency): replaces
  /// the record with `record.id` by `record` only while it is still `expected`, the record the
  /// caller read (same digest and payload bytes; last use is not compared). `errc::stale`, and
  /// nothing written, when it has changed or is gone since; the check and the write are one
  /// atomic step, also against other processes sharing the store. Durable.
  [[nodiscard]] virtual result<void> replace(const token_record& record,
                                             const token_record& expected) = 0;

  /// Removes the record (as `erase`) only while it is still `expected`; `errc::stale`, and
  /// nothing removed, when it has changed or is gone since. Durable.
  [[nodiscard]] virtual result<void> erase_if(const token_record& expected) = 0;

  /// After `errc::stale`: brings this store's copy of `id` up to its source of truth, so that
  /// the next read sees what the conditional write was compared with. Returns what changed in
  /// the copy (for the caller's in-memory view), or nullopt when the store is its own source
  /// of truth and reads are current already (the default).
  [[nodiscard]] virtual result<std::optional<replicated_change>> refresh(std::string_view id) {
    (void)id;
    return std::optional<replicated_change>{};
  }

  /// Up to `limit` records with ids strictly after `after_id` (empty: from the start), in
  /// byte order of their ids.
  [[nodiscard]] virtual result<std::vector<token_record>> scan(std::string_view after_id,
                                                               std::size_t limit) const = 0;

  /// Records last-use times in one batch, without syncing (losing the last second of these on a
  /// crash is acceptable). Notes for ids that no longer exist are dropped.
  [[nodiscard]] virtual result<void> write_last_used(std::span<const usage> notes) = 0;

  /// Whether `put` ever set this marker.
  [[nodiscard]] virtual result<bool> has_marker(std::string_view marker) const = 0;

  /// Makes every earlier write durable, including `write_last_used` ones.
  [[nodiscard]] virtual result<void> flush() = 0;
};

} // namespace tokengate::store
