#pragma once

#include "store/replica_store.hpp"
#include "store/token_store.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace rocksdb {
class DB;
class Status;
class WriteBatch;
struct WriteOptions;
} // namespace rocksdb

namespace tokengate::store {

class report_logger;

/// What RocksDB reports (its warnings and errors, never keys or values), and the store's own
/// failed and resumed writes: `error` or a warning, and one line of text. Called from RocksDB's
/// background threads too.
using store_diagnostics = std::function<void(bool error, std::string_view message)>;

/// The embedded default store: RocksDB in one directory.
///
/// Layout: `t<id>` -> digest + payload, `d<digest>` -> id, `u<id>` -> last use (8 bytes,
/// big-endian seconds), `m<marker>` -> empty, `s<name>` -> a replica's sync state. Record writes go
/// in one WriteBatch with a synced WAL; last-use notes are written unsynced.
class rocksdb_store final : public token_store, public replica_store {
public:
  /// Opens (creating when missing) the store in `dir`. An error names the directory and
  /// RocksDB's reason when it cannot, e.g. when another process holds it, when its write-ahead
  /// log is damaged before its end, or when the directory holds a store's files but not the
  /// `CURRENT` that names them (never taken for an empty directory). RocksDB's messages go to
  /// `report` (by default to stderr), never to a file in `dir`.
  [[nodiscard]] static open_result<std::unique_ptr<rocksdb_store>>
  open(const std::filesystem::path& dir, store_diagnostics report = {});

  ~rocksdb_store() override;
  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  result<std::optional<token_record>> get(std::string_view id) const override;
  result<std::optional<token_record>> find(const digest& d) const override;
  result<void> put(const token_record& record, std::string_view marker = {}) override;
  result<void> put_many(std::span<const token_record> records) override;
  result<bool> erase(std::string_view id) override;
  /// The check reads the record under the writers' mutex, so no write of this process
  /// comes between it and the write (the directory is one process' alone).
  result<void> replace(const token_record& record, const token_record& expected) override;
  result<void> erase_if(const token_record& expected) override;
  result<std::vector<token_record>> scan(std::string_view after_id,
                                         std::size_t limit) const override;
  result<void> write_last_used(std::span<const usage> notes) override;
  result<bool> has_marker(std::string_view marker) const override;
  /// Every marker `put` set, in order (for `tokengate migrate`).
  [[nodiscard]] result<std::vector<std::string>> markers() const;
  /// Syncs the write-ahead log; after a failed write, which RocksDB may not survive a sync of
  /// (see the destructor), only says that it failed.
  result<void> flush() override;

  // replica_store: a fleet's follower writes a replica through these.
  [[nodiscard]] result<std::optional<std::string>> read_meta(std::string_view name) const override;
  [[nodiscard]] result<void> apply(const replica_batch& batch) override;
  [[nodiscard]] result<void> note_meta(std::string_view name, std::string_view value) override;
  /// RocksDB's DB::Resume(): after a failed write RocksDB refuses every later one until then.
  [[nodiscard]] result<void> resume() override;
  /// RocksDB's status text of the last failed operation (it names files, never keys or values).
  [[nodiscard]] std::string last_error() const override;

private:
  rocksdb_store(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<report_logger> logger,
                store_diagnostics report);
  /// Before a write: after a failed one, RocksDB refuses writes until it is resumed, and by
  /// itself resumes only once a full memtable's room (64 MiB) is free. The store resumes it
  /// from its writes, a second after the failure and then every 2, 4 and at most 8 seconds, so
  /// writes come back soon after the disk takes them again.
  [[nodiscard]] result<void> writable();
  /// Resumes RocksDB after a failed write, when it can leave the log that failed. Needs
  /// write_mutex_.
  [[nodiscard]] result<void> resume_now();
  /// Keeps the memtable from being empty (one key, not logged, after the open and a resume):
  /// RocksDB's resume starts a new log, leaving the one that failed, only when the memtable
  /// holds something. Needs write_mutex_.
  void anchor();
  /// Writes `batch` once the store is writable.
  [[nodiscard]] result<void> commit(const rocksdb::WriteOptions& options,
                                    rocksdb::WriteBatch& batch);
  [[nodiscard]] result<void> stage(const token_record& record, rocksdb::WriteBatch& batch);
  [[nodiscard]] result<std::optional<token_record>> stored(std::string_view id) const;
  [[nodiscard]] result<void> stage_removal(const token_record& old,
                                           rocksdb::WriteBatch& batch) const;
  [[nodiscard]] result<void> stage_known(const token_record& record,
                                         const std::optional<digest>& replaced,
                                         rocksdb::WriteBatch& batch) const;

  /// Notes `s` as the last error (its text) and returns its error code.
  [[nodiscard]] errc failed(const rocksdb::Status& s) const;
  /// The same for a write, which RocksDB may not recover from (see the destructor).
  [[nodiscard]] errc failed_write(const rocksdb::Status& s);

  std::unique_ptr<rocksdb::DB> db_;
  // Writers read the previous record (to drop its digest index) before writing: one at a time.
  std::mutex write_mutex_;
  mutable std::mutex error_mutex_;
  mutable std::string last_error_;
  std::atomic<bool> write_failed_{false};
  std::uint64_t failed_wal_ = 0; ///< the log the first failed write went to; under write_mutex_
  /// A resume could not leave that log: writes wait for a restart. Under write_mutex_.
  bool stuck_ = false;
  std::shared_ptr<report_logger> logger_; ///< RocksDB's messages, to report_
  store_diagnostics report_;
  std::chrono::steady_clock::time_point last_resume_{};                      ///< under error_mutex_
  std::chrono::steady_clock::duration resume_wait_{std::chrono::seconds(1)}; ///< the same
};

} // namespace tokengate::store
