#include "store/rocksdb_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <initializer_list>

namespace tokengate::store {
namespace {

constexpr char record_prefix = 't';
constexpr char digest_prefix = 'd';
constexpr char usage_prefix = 'u';
constexpr char marker_prefix = 'm';
constexpr char meta_prefix = 's';

std::string key(char prefix, std::string_view rest) {
  std::string k;
  k.reserve(rest.size() + 1);
  k.push_back(prefix);
  k.append(rest);
  return k;
}

std::string_view as_view(const digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

// The first failure among the statuses of writes staged in a batch (they fail only on keys or
// values too large for RocksDB), or ok.
rocksdb::Status first_failure(std::initializer_list<rocksdb::Status> statuses) {
  for (const auto& s : statuses)
    if (!s.ok())
      return s;
  return rocksdb::Status::OK();
}

errc to_error(const rocksdb::Status& s) {
  if (s.IsCorruption())
    return errc::corruption;
  if (s.IsBusy() || s.IsShutdownInProgress() || s.IsTryAgain() || s.IsTimedOut())
    return errc::busy;
  return errc::io_error;
}

std::string encode_usage(std::int64_t at) {
  std::string out(8, '\0');
  auto u = static_cast<std::uint64_t>(at);
  for (int i = 7; i >= 0; --i, u >>= 8)
    out[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xff);
  return out;
}

std::optional<std::int64_t> decode_usage(std::string_view v) {
  if (v.size() != 8)
    return std::nullopt;
  std::uint64_t u = 0;
  for (char c : v)
    u = (u << 8) | static_cast<unsigned char>(c);
  return static_cast<std::int64_t>(u);
}

// A record value is the 32-byte digest followed by the payload.
result<token_record> decode_record(std::string_view id, std::string_view value) {
  token_record r;
  if (value.size() < r.value_digest.size())
    return errc::corruption;
  r.id = id;
  std::copy_n(value.data(), r.value_digest.size(), reinterpret_cast<char*>(r.value_digest.data()));
  r.payload = value.substr(r.value_digest.size());
  return r;
}

// While writes fail, how often a write tries to resume the store: a second after the failure,
// then less often (each try that fails is one warning of RocksDB's in the log).
constexpr std::chrono::steady_clock::duration min_resume_wait = std::chrono::seconds(1);
constexpr std::chrono::steady_clock::duration max_resume_wait = std::chrono::seconds(8);

// The number of the write-ahead log written to now; 0 when RocksDB cannot say.
std::uint64_t current_wal(rocksdb::DB& db) {
  std::unique_ptr<rocksdb::LogFile> wal;
  if (!db.GetCurrentWalFile(&wal).ok() || !wal)
    return 0;
  return wal->LogNumber();
}

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions o;
  o.sync = true;
  return o;
}

} // namespace

/// RocksDB's messages, to the store's report instead of a LOG file in the data directory: on
/// a full disk, Debian's RocksDB (assertions on) aborts the process on the first append to a
/// file after a failed one, and its LOG is appended to every few seconds.
class report_logger final : public rocksdb::Logger {
public:
  explicit report_logger(store_diagnostics report)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), report_(std::move(report)) {}

  /// No more messages to the report (which may go with its store, while RocksDB lives on).
  void detach() {
    std::lock_guard lock(mutex_);
    report_ = nullptr;
  }

  // RocksDB's own base asserts: a message without a level is an informational one.
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL)
      return;
    std::array<char, 1024> text{};
    const int n = std::vsnprintf(text.data(), text.size(), format, ap);
    if (n < 0)
      return;
    std::string_view line(text.data(),
                          std::min<std::size_t>(static_cast<std::size_t>(n), text.size() - 1));
    while (!line.empty() && (line.back() == '\n' || line.back() == ' '))
      line.remove_suffix(1);
    std::lock_guard lock(mutex_);
    if (report_)
      report_(level >= rocksdb::InfoLogLevel::ERROR_LEVEL, line);
  }

private:
  std::mutex mutex_;
  store_diagnostics report_;
};

namespace {

/// Leaves the recovery from a full disk to the store's writes (rocksdb_store::writable): RocksDB's
/// own waits for a full memtable's room to be free (64 MiB, more than a small volume may ever
/// have) and meanwhile refuses to be resumed.
class manual_recovery final : public rocksdb::EventListener {
public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

/// Whether `dir` holds what only a store that has taken writes holds: table files or a
/// write-ahead log.
bool holds_store_files(const std::filesystem::path& dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto ext = it->path().extension();
    if (ext == ".sst" || ext == ".log")
      return true;
  }
  return false;
}

} // namespace

open_result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::filesystem::path& dir,
                                                                store_diagnostics report) {
  if (!report)
    report = [](bool error, std::string_view message) {
      std::fprintf(stderr, "tokengate: token store %s: %.*s\n", error ? "error" : "warning",
                   static_cast<int>(message.size()), message.data());
    };
  std::error_code fs_error;
  std::filesystem::create_directories(dir, fs_error);
  if (fs_error)
    return open_error{errc::io_error,
                      "cannot create data directory " + dir.string() + ": " + fs_error.message()};
  // Without CURRENT, RocksDB takes a directory for a new store and deletes the table files it
  // finds there: a store that lost that one file would be replaced by an empty one.
  if (!std::filesystem::exists(dir / "CURRENT", fs_error) && holds_store_files(dir))
    return open_error{errc::corruption,
                      "cannot open token store in " + dir.string() +
                          ": it holds a store's files but no CURRENT file; restore the "
                          "directory from a backup (a new store is never made over them)"};
  rocksdb::Options options;
  options.create_if_missing = true;
  auto logger = std::make_shared<report_logger>(report);
  options.info_log = logger;
  options.listeners.push_back(std::make_shared<manual_recovery>());
  // A record damaged before the log's end (not a write torn by a crash at its end) stops the
  // start: RocksDB's default would drop it and every later one, answered writes included.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  rocksdb::DB* raw = nullptr;
  auto status = rocksdb::DB::Open(options, dir.string(), &raw);
  if (!status.ok())
    return open_error{status.IsCorruption() ? errc::corruption : errc::io_error,
                      "cannot open token store in " + dir.string() + ": " + status.ToString()};
  std::unique_ptr<rocksdb_store> store(
      new rocksdb_store(std::unique_ptr<rocksdb::DB>(raw), std::move(logger), std::move(report)));
  std::lock_guard lock(store->write_mutex_);
  store->anchor();
  return store;
}

rocksdb_store::rocksdb_store(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<report_logger> logger,
                             store_diagnostics report)
    : db_(std::move(db)), logger_(std::move(logger)), report_(std::move(report)) {}

errc rocksdb_store::failed(const rocksdb::Status& s) const {
  std::lock_guard lock(error_mutex_);
  last_error_ = s.ToString();
  return to_error(s);
}

errc rocksdb_store::failed_write(const rocksdb::Status& s) {
  // Only an I/O error (a full disk) leaves RocksDB refusing writes until it is resumed; any
  // other failure is the write's own.
  if (s.IsIOError() && !write_failed_.exchange(true)) {
    report_(true,
            "a write failed, and the store takes none until it can be resumed: " + s.ToString());
    failed_wal_ = current_wal(*db_);
    std::lock_guard lock(error_mutex_);
    last_resume_ = std::chrono::steady_clock::now();
    resume_wait_ = min_resume_wait;
  }
  return failed(s);
}

result<void> rocksdb_store::writable() {
  if (!write_failed_)
    return {};
  {
    std::lock_guard lock(error_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (stuck_ || now - last_resume_ < resume_wait_)
      return errc::io_error; // last_error_ still says why
    last_resume_ = now;
    resume_wait_ = std::min(resume_wait_ * 2, max_resume_wait);
  }
  return resume_now();
}

result<void> rocksdb_store::resume_now() {
  if (stuck_)
    return errc::io_error;
  if (auto s = db_->Resume(); !s.ok())
    return failed(s);
  // RocksDB leaves a log that failed only by starting a new one, which its resume does only when
  // the memtable holds something (see anchor()). Written to again, the failed log aborts the
  // process (Debian's build): the writes wait for a restart instead.
  if (const auto wal = current_wal(*db_); wal == 0 || failed_wal_ == 0 || wal == failed_wal_) {
    stuck_ = true;
    report_(true, "the store cannot leave the log that failed: token changes are refused until "
                  "the sidecar restarts");
    return errc::io_error;
  }
  {
    std::lock_guard lock(error_mutex_);
    resume_wait_ = min_resume_wait;
  }
  write_failed_ = false;
  anchor();
  if (write_failed_)
    return errc::io_error;
  report_(false, "writes resumed");
  return {};
}

void rocksdb_store::anchor() {
  rocksdb::WriteBatch batch;
  if (!batch.Put(slice(key(meta_prefix, "memtable-anchor")), rocksdb::Slice()).ok())
    return;
  // Into the memtable alone: a write to the log could fail on the disk it is there for.
  rocksdb::WriteOptions memtable_only;
  memtable_only.disableWAL = true;
  if (auto s = db_->Write(memtable_only, &batch); !s.ok())
    (void)failed_write(s);
}

result<void> rocksdb_store::commit(const rocksdb::WriteOptions& options,
                                   rocksdb::WriteBatch& batch) {
  if (auto ready = writable(); !ready)
    return ready;
  if (auto s = db_->Write(options, &batch); !s.ok())
    return failed_write(s);
  return {};
}

std::string rocksdb_store::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

rocksdb_store::~rocksdb_store() {
  if (!db_)
    return;
  if (write_failed_) {
    logger_->detach();
    // After a failed write to its log, RocksDB (Debian's build, assertions on) aborts the
    // process on any further use of that log, closing included. What it took is on disk: the
    // process' exit releases the rest (kept reachable meanwhile: not a leak).
    std::fprintf(stderr, "tokengate: the token store took a failed write: left unclosed\n");
    static std::mutex unclosed_mutex;
    static auto* const unclosed = new std::vector<std::unique_ptr<rocksdb::DB>>;
    std::lock_guard lock(unclosed_mutex);
    unclosed->push_back(std::move(db_));
    return;
  }
  // No caller is left to hand a failure to (flush() is the checked way): say it on stderr.
  const auto synced_wal = db_->SyncWAL();
  // Writing the memtable out now spares the next start replaying the log into one (with a
  // freshly seeded million tokens, the larger part of the start-up).
  const auto flushed = db_->Flush(rocksdb::FlushOptions{});
  const auto closed = db_->Close();
  logger_->detach();
  for (const auto* s : {&synced_wal, &flushed, &closed})
    if (!s->ok())
      std::fprintf(stderr, "tokengate: closing the token store: %s\n", s->ToString().c_str());
}

// The record stored under `id`, without its last use; nullopt when there is none.
result<std::optional<token_record>> rocksdb_store::stored(std::string_view id) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), slice(key(record_prefix, id)), &value);
  if (s.IsNotFound())
    return std::optional<token_record>{};
  if (!s.ok())
    return failed(s);
  auto record = decode_record(id, value);
  if (!record)
    return record.error();
  return std::optional<token_record>{std::move(*record)};
}

result<std::optional<token_record>> rocksdb_store::get(std::string_view id) const {
  auto record = stored(id);
  if (!record || !*record)
    return record;
  std::string used;
  auto s = db_->Get(rocksdb::ReadOptions(), slice(key(usage_prefix, id)), &used);
  if (s.ok())
    (*record)->last_used = decode_usage(used);
  else if (!s.IsNotFound())
    return failed(s);
  return record;
}

result<std::optional<token_record>> rocksdb_store::find(const digest& d) const {
  std::string id;
  auto s = db_->Get(rocksdb::ReadOptions(), slice(key(digest_prefix, as_view(d))), &id);
  if (s.IsNotFound())
    return std::optional<token_record>{};
  if (!s.ok())
    return failed(s);
  return get(id);
}

// Adds the writes of one record (and the removal of the digest it replaces) to `batch`.
result<void> rocksdb_store::stage(const token_record& record, rocksdb::WriteBatch& batch) {
  auto previous = stored(record.id);
  if (!previous)
    return previous.error();
  std::optional<digest> replaced;
  if (*previous)
    replaced = (*previous)->value_digest;
  return stage_known(record, replaced, batch);
}

// As stage, when the caller knows which digest the record replaces: no read.
result<void> rocksdb_store::stage_known(const token_record& record,
                                        const std::optional<digest>& replaced,
                                        rocksdb::WriteBatch& batch) const {
  if (replaced && *replaced != record.value_digest)
    if (auto s = batch.Delete(slice(key(digest_prefix, as_view(*replaced)))); !s.ok())
      return failed(s);
  std::string value;
  value.reserve(record.value_digest.size() + record.payload.size());
  value.append(as_view(record.value_digest));
  value.append(record.payload);
  auto s = first_failure(
      {batch.Put(slice(key(record_prefix, record.id)), slice(value)),
       batch.Put(slice(key(digest_prefix, as_view(record.value_digest))), slice(record.id))});
  if (!s.ok())
    return failed(s);
  return {};
}

result<void> rocksdb_store::put(const token_record& record, std::string_view marker) {
  std::lock_guard lock(write_mutex_);
  rocksdb::WriteBatch batch;
  if (auto staged = stage(record, batch); !staged)
    return staged;
  if (!marker.empty())
    if (auto s = batch.Put(slice(key(marker_prefix, marker)), rocksdb::Slice()); !s.ok())
      return failed(s);
  return commit(synced(), batch);
}

result<void> rocksdb_store::put_many(std::span<const token_record> records) {
  std::lock_guard lock(write_mutex_);
  rocksdb::WriteBatch batch;
  for (const auto& r : records)
    if (auto staged = stage(r, batch); !staged)
      return staged;
  return commit(synced(), batch);
}

// Adds the removal of `old`: record, digest index and usage.
result<void> rocksdb_store::stage_removal(const token_record& old,
                                          rocksdb::WriteBatch& batch) const {
  auto s = first_failure({batch.Delete(slice(key(record_prefix, old.id))),
                          batch.Delete(slice(key(digest_prefix, as_view(old.value_digest)))),
                          batch.Delete(slice(key(usage_prefix, old.id)))});
  if (!s.ok())
    return failed(s);
  return {};
}

result<bool> rocksdb_store::erase(std::string_view id) {
  std::lock_guard lock(write_mutex_);
  auto old = stored(id);
  if (!old)
    return {boost::system::in_place_error, old.error()};
  if (!*old)
    return false;
  rocksdb::WriteBatch batch;
  if (auto staged = stage_removal(**old, batch); !staged)
    return {boost::system::in_place_error, staged.error()};
  if (auto done = commit(synced(), batch); !done)
    return {boost::system::in_place_error, done.error()};
  return true;
}

namespace {

// Whether `held`, read from the store, is still the record the caller read.
bool still(const std::optional<token_record>& held, const token_record& expected) {
  return held && held->value_digest == expected.value_digest && held->payload == expected.payload;
}

} // namespace

result<void> rocksdb_store::replace(const token_record& record, const token_record& expected) {
  std::lock_guard lock(write_mutex_);
  auto held = stored(expected.id);
  if (!held)
    return held.error();
  if (!still(*held, expected) || record.id != expected.id)
    return errc::stale;
  rocksdb::WriteBatch batch;
  if (auto staged = stage_known(record, expected.value_digest, batch); !staged)
    return staged;
  return commit(synced(), batch);
}

result<void> rocksdb_store::erase_if(const token_record& expected) {
  std::lock_guard lock(write_mutex_);
  auto held = stored(expected.id);
  if (!held)
    return held.error();
  if (!still(*held, expected))
    return errc::stale;
  rocksdb::WriteBatch batch;
  if (auto staged = stage_removal(**held, batch); !staged)
    return staged;
  return commit(synced(), batch);
}

result<std::vector<token_record>> rocksdb_store::scan(std::string_view after_id,
                                                      std::size_t limit) const {
  // Records and usage notes are both ordered by id: walk them side by side on one snapshot.
  // Declared before the iterators, so released after them.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.snapshot();
  read.fill_cache = false; // a scan reads each block once: keep the cache for point reads
  std::unique_ptr<rocksdb::Iterator> records(db_->NewIterator(read));
  std::unique_ptr<rocksdb::Iterator> usages(db_->NewIterator(read));

  std::vector<token_record> page;
  const auto start = key(record_prefix, after_id);
  records->Seek(slice(start));
  if (records->Valid() && !after_id.empty() && records->key() == slice(start))
    records->Next();
  if (records->Valid() && records->key().starts_with(rocksdb::Slice(&record_prefix, 1)))
    usages->Seek(slice(key(usage_prefix, records->key().ToStringView().substr(1))));

  boost::system::error_code failure;
  for (; records->Valid() && page.size() < limit; records->Next()) {
    auto k = records->key().ToStringView();
    if (k.empty() || k.front() != record_prefix)
      break;
    auto id = k.substr(1);
    auto record = decode_record(id, records->value().ToStringView());
    if (!record) {
      failure = record.error();
      break;
    }
    while (usages->Valid() && usages->key().ToStringView().front() == usage_prefix &&
           usages->key().ToStringView().substr(1) < id)
      usages->Next();
    if (usages->Valid() && usages->key().ToStringView() == key(usage_prefix, id))
      record->last_used = decode_usage(usages->value().ToStringView());
    page.push_back(std::move(*record));
  }
  if (!failure && !records->status().ok())
    failure = failed(records->status());
  if (!failure && !usages->status().ok())
    failure = failed(usages->status());
  if (failure)
    return failure;
  return page;
}

result<void> rocksdb_store::write_last_used(std::span<const usage> notes) {
  std::lock_guard lock(write_mutex_);
  // While writes are refused the notes come back every second: no reads for a refused batch.
  if (auto ready = writable(); !ready)
    return ready;
  rocksdb::WriteBatch batch;
  std::string ignored;
  for (const auto& note : notes) {
    auto s = db_->Get(rocksdb::ReadOptions(), slice(key(record_prefix, note.id)), &ignored);
    if (s.IsNotFound())
      continue;
    if (!s.ok())
      return failed(s);
    if (s = batch.Put(slice(key(usage_prefix, note.id)), slice(encode_usage(note.at))); !s.ok())
      return failed(s);
  }
  if (batch.Count() == 0)
    return {};
  return commit(rocksdb::WriteOptions(), batch);
}

result<bool> rocksdb_store::has_marker(std::string_view marker) const {
  std::string ignored;
  auto s = db_->Get(rocksdb::ReadOptions(), slice(key(marker_prefix, marker)), &ignored);
  if (s.IsNotFound())
    return false;
  if (!s.ok())
    return failed(s);
  return true;
}

result<std::vector<std::string>> rocksdb_store::markers() const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(&marker_prefix, 1));
       it->Valid() && it->key().starts_with(rocksdb::Slice(&marker_prefix, 1)); it->Next())
    out.emplace_back(it->key().ToStringView().substr(1));
  if (!it->status().ok())
    return failed(it->status());
  return out;
}

result<std::optional<std::string>> rocksdb_store::read_meta(std::string_view name) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), slice(key(meta_prefix, name)), &value);
  if (s.IsNotFound())
    return std::optional<std::string>{};
  if (!s.ok())
    return failed(s);
  return std::optional<std::string>{std::move(value)};
}

result<void> rocksdb_store::apply(const replica_batch& changes) {
  std::lock_guard lock(write_mutex_);
  rocksdb::WriteBatch batch;
  const bool known = changes.replaced.size() == changes.puts.size();
  for (std::size_t i = 0; i < changes.puts.size(); ++i) {
    const auto& r = changes.puts[i];
    auto staged = known ? stage_known(r, changes.replaced[i], batch) : stage(r, batch);
    if (!staged)
      return staged;
    if (r.last_used)
      if (auto s = batch.Put(slice(key(usage_prefix, r.id)), slice(encode_usage(*r.last_used)));
          !s.ok())
        return failed(s);
  }
  for (const auto& id : changes.erases) {
    auto old = stored(id);
    if (!old)
      return old.error();
    if (*old)
      if (auto staged = stage_removal(**old, batch); !staged)
        return staged;
  }
  for (const auto& [name, value] : changes.meta)
    if (auto s = batch.Put(slice(key(meta_prefix, name)), slice(value)); !s.ok())
      return failed(s);
  return commit(rocksdb::WriteOptions(), batch);
}

result<void> rocksdb_store::note_meta(std::string_view name, std::string_view value) {
  std::lock_guard lock(write_mutex_);
  rocksdb::WriteBatch batch;
  if (auto s = batch.Put(slice(key(meta_prefix, name)), slice(value)); !s.ok())
    return failed(s);
  return commit(rocksdb::WriteOptions(), batch);
}

result<void> rocksdb_store::flush() {
  if (write_failed_)
    return errc::io_error;
  auto s = db_->SyncWAL();
  if (!s.ok())
    return failed(s);
  return {};
}

// With the default paranoid_checks, one failed write (a full disk, an I/O error) leaves RocksDB
// refusing every later write until it is resumed.
result<void> rocksdb_store::resume() {
  std::lock_guard lock(write_mutex_);
  if (!write_failed_)
    return {};
  return resume_now();
}

} // namespace tokengate::store
