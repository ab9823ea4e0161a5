#include "store/rocksdb_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/write_batch.h>

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

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions o;
  o.sync = true;
  return o;
}

} // namespace

open_result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::filesystem::path& dir) {
  std::error_code fs_error;
  std::filesystem::create_directories(dir, fs_error);
  if (fs_error)
    return open_error{errc::io_error,
                      "cannot create data directory " + dir.string() + ": " + fs_error.message()};
  rocksdb::Options options;
  options.create_if_missing = true;
  options.keep_log_file_num = 3;
  options.max_log_file_size = 1 << 20;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::DB* raw = nullptr;
  auto status = rocksdb::DB::Open(options, dir.string(), &raw);
  if (!status.ok())
    return open_error{status.IsCorruption() ? errc::corruption : errc::io_error,
                      "cannot open token store in " + dir.string() + ": " + status.ToString()};
  return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::unique_ptr<rocksdb::DB>(raw)));
}

rocksdb_store::rocksdb_store(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

errc rocksdb_store::failed(const rocksdb::Status& s) const {
  std::lock_guard lock(error_mutex_);
  last_error_ = s.ToString();
  return to_error(s);
}

errc rocksdb_store::failed_write(const rocksdb::Status& s) {
  write_failed_ = true;
  return failed(s);
}

std::string rocksdb_store::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

rocksdb_store::~rocksdb_store() {
  if (!db_)
    return;
  if (write_failed_) {
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
  if (auto s = db_->Write(synced(), &batch); !s.ok())
    return failed_write(s);
  return {};
}

result<void> rocksdb_store::put_many(std::span<const token_record> records) {
  std::lock_guard lock(write_mutex_);
  rocksdb::WriteBatch batch;
  for (const auto& r : records)
    if (auto staged = stage(r, batch); !staged)
      return staged;
  if (auto s = db_->Write(synced(), &batch); !s.ok())
    return failed_write(s);
  return {};
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
  if (auto s = db_->Write(synced(), &batch); !s.ok())
    return failed_write(s);
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
  if (auto s = db_->Write(synced(), &batch); !s.ok())
    return failed_write(s);
  return {};
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
  if (auto s = db_->Write(synced(), &batch); !s.ok())
    return failed_write(s);
  return {};
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
  auto s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok())
    return failed_write(s);
  return {};
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
  if (auto s = db_->Write(rocksdb::WriteOptions(), &batch); !s.ok())
    return failed_write(s);
  return {};
}

result<void> rocksdb_store::note_meta(std::string_view name, std::string_view value) {
  auto s = db_->Put(rocksdb::WriteOptions(), slice(key(meta_prefix, name)), slice(value));
  if (!s.ok())
    return failed_write(s);
  return {};
}

result<void> rocksdb_store::flush() {
  auto s = db_->SyncWAL();
  if (!s.ok())
    return failed(s);
  return {};
}

// With the default paranoid_checks, one failed write (a full disk, an I/O error) leaves RocksDB
// refusing every later write until it is resumed.
result<void> rocksdb_store::resume() {
  std::lock_guard lock(write_mutex_);
  if (auto s = db_->Resume(); !s.ok())
    return failed(s);
  return {};
}

} // namespace tokengate::store
