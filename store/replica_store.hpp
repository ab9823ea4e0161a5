#pragma once

#include "store/token_store.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokengate::store {

/// Writes the follower of a fleet applies to a replica in one atomic batch.
struct replica_batch {
  std::vector<token_record> puts;                        ///< with their last use, when known
  std::vector<std::string> erases;                       ///< ids
  std::vector<std::pair<std::string, std::string>> meta; ///< sync state, see `read_meta`
  /// Empty, or one per put: the digest the replica holds for its id (nullopt: none), which
  /// spares a read per record (a joining sidecar writes a million).
  std::vector<std::optional<digest>> replaced;
};

/// A fleet sidecar's local copy of the database's tokens, as its follower reads and writes it
/// (rocksdb_store; in tests, one whose operations can fail).
class replica_store {
public:
  virtual ~replica_store() = default;

  /// As token_store::get and scan.
  [[nodiscard]] virtual result<std::optional<token_record>> get(std::string_view id) const = 0;
  [[nodiscard]] virtual result<std::vector<token_record>> scan(std::string_view after_id,
                                                               std::size_t limit) const = 0;
  /// A value `apply` stored under `name` (the replica's sync state), or nullopt.
  [[nodiscard]] virtual result<std::optional<std::string>>
  read_meta(std::string_view name) const = 0;
  /// Applies a batch of a fleet's changes atomically, unsynced: a crash may lose the last
  /// batches, and with them the seq they reached (in the same batch), so the follower fetches
  /// them again. The database, not the replica, is what must not lose a write.
  [[nodiscard]] virtual result<void> apply(const replica_batch& batch) = 0;
  /// Stores one meta value, unsynced (e.g. the time of the last sync, every second).
  [[nodiscard]] virtual result<void> note_meta(std::string_view name, std::string_view value) = 0;
  /// After a failed write: lets the engine take writes again when it can (RocksDB stops taking
  /// any after one failed). An error when it cannot (yet).
  [[nodiscard]] virtual result<void> resume() = 0;
  /// The engine's reason for the last failure (no key values: the store holds digests only),
  /// or empty. Thread-safe.
  [[nodiscard]] virtual std::string last_error() const = 0;
};

} // namespace tokengate::store
