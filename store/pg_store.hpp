#pragma once

#include "store/pg_connection.hpp"
#include "store/token_store.hpp"

#include <cstdint>
#include <functional>
#include <mutex>

namespace tokengate::store {

/// The shared token store of a fleet: PostgreSQL, the source of truth.
///
/// Tables (created by `migrate`, see pg_store.cpp): `tokengate_tokens` (id, SHA-256 digest,
/// payload, last use: never a value), `tokengate_markers`, and the change log
/// `tokengate_changes` (seq, id). Every record write appends to the log in its own transaction
/// and notifies channel `tokengate_changes` with the seq as payload; a row lock on
/// `tokengate_meta` hands out the seqs, so they have no gaps and commit in order. Last-use
/// notes stay outside the log. Thread-safe: one session, one call at a time.
class pg_store final : public token_store {
public:
  explicit pg_store(pg_settings settings);

  /// Creates or upgrades the schema under an advisory lock (many sidecars may start at once).
  [[nodiscard]] result<void> migrate();

  /// Holds off every other sidecar's bootstrap (a session advisory lock) until `unlock_bootstrap`
  /// or the session ends.
  [[nodiscard]] result<void> lock_bootstrap();
  void unlock_bootstrap();

  /// Copies standalone records in one transaction: ids already present with the same digest and
  /// payload are skipped; one with a different one fails the whole copy with `conflict`, naming
  /// it in `clash`. Returns how many records were added.
  /// Sets these markers (those already set stay): `tokengate migrate` copies a standalone
  /// store's, so that a bootstrap token deleted there is not created again from its file.
  [[nodiscard]] result<void> import_markers(std::span<const std::string> markers);
  [[nodiscard]] result<std::size_t> import(std::span<const token_record> records,
                                           std::string& clash);

  /// Test hook: the next commit is answered as if the session broke before its reply came, after
  /// running `meanwhile` (pg_connection::lose_next_commit_reply).
  void lose_next_commit_reply(std::function<void()> meanwhile = [] {}) {
    std::lock_guard lock(mutex_);
    conn_.lose_next_commit_reply(std::move(meanwhile));
  }

  /// Told (the token's id, and whether the write was found committed when read back) when a
  /// write's session broke during its COMMIT: for the log. Set before the store is used.
  void on_lost_commit(std::function<void(std::string_view, bool)> hook) {
    on_lost_commit_ = std::move(hook);
  }

  /// Why the last call failed (libpq's words, never a password).
  [[nodiscard]] std::string last_error() const;

  result<std::optional<token_record>> get(std::string_view id) const override;
  result<std::optional<token_record>> find(const digest& d) const override;
  result<void> put(const token_record& record, std::string_view marker = {}) override;
  result<void> put_many(std::span<const token_record> records) override;
  result<bool> erase(std::string_view id) override;
  /// One conditional statement (`UPDATE`/`DELETE ... WHERE` digest and payload are those read)
  /// and the change-log entry, in one transaction: of two sidecars changing what they both
  /// read, the second finds no row and gets `errc::stale`.
  /// A session that breaks during COMMIT (the reply lost) is read again: the write is done when
  /// the database holds what it leaves, else `commit_unknown`. So also for `put` and `erase_if`.
  result<void> replace(const token_record& record, const token_record& expected) override;
  result<void> erase_if(const token_record& expected) override;
  result<std::vector<token_record>> scan(std::string_view after_id,
                                         std::size_t limit) const override;
  /// One statement for the whole batch; the later time wins.
  result<void> write_last_used(std::span<const usage> notes) override;
  result<bool> has_marker(std::string_view marker) const override;
  result<void> flush() override;

private:
  [[nodiscard]] result<void> upsert_logged(const token_record& record);
  [[nodiscard]] result<void> log_change(std::string_view id);
  [[nodiscard]] result<void> settled(const result<void>& written, std::string_view id,
                                     const token_record* intended) const;
  [[nodiscard]] result<std::optional<token_record>> select_one(std::string_view where,
                                                               std::string_view param) const;

  mutable std::mutex mutex_;
  mutable pg_connection conn_;
  std::function<void(std::string_view, bool)> on_lost_commit_;
};

/// Creates or upgrades the schema on `c` under an advisory lock (see pg_store::migrate).
[[nodiscard]] result<void> migrate_schema(pg_connection& c);

/// Deletes change-log entries older than `keep` and records how far the log was pruned, so a
/// replica that needed them reloads a snapshot. Returns how many entries went.
[[nodiscard]] result<std::size_t> prune_log(pg_connection& c, std::chrono::seconds keep);

/// Decodes a row of (id, hex digest, payload, last_used).
[[nodiscard]] result<token_record>
record_from_row(const std::vector<std::optional<std::string>>& row);

/// The columns `record_from_row` reads, for SELECT lists.
inline constexpr std::string_view record_columns = "id, encode(digest, 'hex'), payload, last_used";

} // namespace tokengate::store
