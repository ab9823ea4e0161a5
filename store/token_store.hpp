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

/// The durable home of tokens: records by id, a digest index, and small markers.
///
/// Writes of records (`put`, `erase`) are atomic (record and index in one batch) and durable
/// once they return. Reads see every write that has returned. All functions are thread-safe.
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
