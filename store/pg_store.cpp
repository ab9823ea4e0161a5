#include "store/pg_store.hpp"

#include <charconv>

namespace tokengate::store {
namespace {

// Any fixed numbers: the advisory locks of schema migration and of bootstrap.
constexpr std::string_view schema_lock = "7461292001";
constexpr std::string_view bootstrap_lock = "7461292002";

// Migrations, in order; version N is migrations[N - 1]. Never edit one that has shipped: add.
constexpr std::string_view migrations[] = {
    R"(CREATE TABLE tokengate_meta (
         one boolean PRIMARY KEY DEFAULT true CHECK (one),
         database_id text NOT NULL,
         last_seq bigint NOT NULL DEFAULT 0,
         pruned_below bigint NOT NULL DEFAULT 0);
       INSERT INTO tokengate_meta (database_id)
         VALUES (md5(random()::text || clock_timestamp()::text));
       CREATE TABLE tokengate_tokens (
         id text COLLATE "C" PRIMARY KEY,
         digest bytea NOT NULL UNIQUE,
         payload text NOT NULL,
         last_used bigint);
       CREATE TABLE tokengate_markers (name text COLLATE "C" PRIMARY KEY);
       CREATE TABLE tokengate_changes (
         seq bigint PRIMARY KEY,
         id text COLLATE "C" NOT NULL,
         changed_at timestamptz NOT NULL DEFAULT now()))",
};

std::optional<std::int64_t> to_int(const std::optional<std::string>& text) {
  std::int64_t v = 0;
  if (!text)
    return std::nullopt;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size())
    return std::nullopt;
  return v;
}

std::string hex(const digest& d) { return to_hex(d.data(), d.size()); }

// A text[] literal: every element quoted, `"` and `\` escaped.
std::string text_array(std::span<const usage> notes) {
  std::string out = "{";
  for (const auto& n : notes) {
    out += out.size() > 1 ? ",\"" : "\"";
    for (char c : n.id) {
      if (c == '"' || c == '\\')
        out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out + "}";
}

std::string int_array(std::span<const usage> notes) {
  std::string out = "{";
  for (const auto& n : notes)
    out += (out.size() > 1 ? "," : "") + std::to_string(n.at);
  return out + "}";
}

result<void> run_migrations(pg_connection& c) {
  auto table = c.exec("CREATE TABLE IF NOT EXISTS tokengate_schema (version int PRIMARY KEY)");
  if (!table)
    return table.error();
  auto current = c.exec("SELECT coalesce(max(version), 0) FROM tokengate_schema");
  if (!current)
    return current.error();
  auto version = to_int(current->at(0).at(0)).value_or(0);
  for (auto v = version; v < static_cast<std::int64_t>(std::size(migrations)); ++v) {
    auto step = in_transaction(c, [&]() -> result<void> {
      if (auto done = c.exec(migrations[v]); !done)
        return done.error();
      const auto next = std::to_string(v + 1);
      if (auto noted = c.exec("INSERT INTO tokengate_schema VALUES ($1)", {next}); !noted)
        return noted.error();
      return {};
    });
    if (!step)
      return step;
  }
  return {};
}

} // namespace

result<token_record> record_from_row(const std::vector<std::optional<std::string>>& row) {
  token_record r;
  if (row.size() < 4 || !row[0] || !row[1] || !row[2] ||
      !from_hex(*row[1], r.value_digest.data(), r.value_digest.size()))
    return errc::corruption;
  r.id = *row[0];
  r.payload = *row[2];
  r.last_used = to_int(row[3]);
  return r;
}

pg_store::pg_store(pg_settings settings) : conn_(std::move(settings)) {}

std::string pg_store::last_error() const {
  std::lock_guard lock(mutex_);
  return conn_.last_error();
}

result<void> migrate_schema(pg_connection& c) {
  if (auto opened = c.connect(); !opened)
    return opened;
  if (auto locked = c.exec("SELECT pg_advisory_lock($1)", {schema_lock}); !locked)
    return locked.error();
  auto done = run_migrations(c);
  if (c.connected())
    (void)c.exec("SELECT pg_advisory_unlock($1)", {schema_lock});
  return done;
}

result<std::size_t> prune_log(pg_connection& c, std::chrono::seconds keep) {
  // The meta row's lock orders this with writers, as for any change of the log. A writer holds
  // it to the end of its transaction: the prune waits a second for it at most (io_error), well
  // within the statement deadline of the follower that runs it.
  if (auto limited = c.exec("SET lock_timeout = 1000"); !limited)
    return limited.error();
  auto gone = c.exec("WITH gone AS (DELETE FROM tokengate_changes "
                     "  WHERE changed_at < now() - make_interval(secs => $1) RETURNING seq) "
                     "UPDATE tokengate_meta SET pruned_below = greatest(pruned_below, "
                     "  (SELECT max(seq) + 1 FROM gone)) WHERE EXISTS (SELECT 1 FROM gone) "
                     "RETURNING (SELECT count(*) FROM gone)",
                     {std::to_string(keep.count())});
  if (c.connected())
    (void)c.exec("RESET lock_timeout");
  if (!gone)
    return gone.error();
  return gone->empty() ? std::size_t{0}
                       : static_cast<std::size_t>(to_int(gone->front()[0]).value_or(0));
}

result<void> pg_store::migrate() {
  std::lock_guard lock(mutex_);
  return migrate_schema(conn_);
}

result<void> pg_store::lock_bootstrap() {
  std::lock_guard lock(mutex_);
  if (auto opened = conn_.connect(); !opened)
    return opened;
  if (auto locked = conn_.exec("SELECT pg_advisory_lock($1)", {bootstrap_lock}); !locked)
    return locked.error();
  return {};
}

void pg_store::unlock_bootstrap() {
  std::lock_guard lock(mutex_);
  if (conn_.connected())
    (void)conn_.exec("SELECT pg_advisory_unlock($1)", {bootstrap_lock});
}

result<std::optional<token_record>> pg_store::select_one(std::string_view where,
                                                         std::string_view param) const {
  std::lock_guard lock(mutex_);
  if (auto opened = conn_.connect(); !opened)
    return opened.error();
  const auto sql = "SELECT " + std::string(record_columns) + " FROM tokengate_tokens WHERE " +
                   std::string(where);
  auto rows = conn_.exec(sql, {param});
  if (!rows)
    return rows.error();
  if (rows->empty())
    return std::optional<token_record>{};
  auto r = record_from_row(rows->front());
  if (!r)
    return r.error();
  return std::optional<token_record>{std::move(*r)};
}

result<std::optional<token_record>> pg_store::get(std::string_view id) const {
  return select_one("id = $1", id);
}

result<std::optional<token_record>> pg_store::find(const digest& d) const {
  return select_one("digest = decode($1, 'hex')", hex(d));
}

// The record and its change-log entry; the caller holds the mutex inside a transaction.
result<void> pg_store::upsert_logged(const token_record& record) {
  auto written = conn_.exec(
      "INSERT INTO tokengate_tokens (id, digest, payload) VALUES ($1, decode($2, 'hex'), $3) "
      "ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, payload = excluded.payload",
      {record.id, hex(record.value_digest), record.payload});
  if (!written)
    return written.error();
  return log_change(record.id);
}

// Appends `id` to the change log and notifies the followers; the caller holds the mutex inside
// the transaction that changed the record.
result<void> pg_store::log_change(std::string_view id) {
  // The meta row's lock serializes writers: seqs are handed out and committed in order.
  auto logged =
      conn_.exec("WITH s AS (UPDATE tokengate_meta SET last_seq = last_seq + 1 RETURNING last_seq) "
                 "INSERT INTO tokengate_changes (seq, id) SELECT last_seq, $1 FROM s RETURNING seq",
                 {id});
  if (!logged)
    return logged.error();
  if (logged->empty() || !logged->front().at(0))
    return errc::corruption;
  auto notified = conn_.exec("SELECT pg_notify('tokengate_changes', $1)", {*logged->front().at(0)});
  if (!notified)
    return notified.error();
  return {};
}

result<void> pg_store::put(const token_record& record, std::string_view marker) {
  auto written = [&] {
    std::lock_guard lock(mutex_);
    return in_transaction(conn_, [&]() -> result<void> {
      if (auto done = upsert_logged(record); !done)
        return done;
      if (!marker.empty()) {
        auto set = conn_.exec(
            "INSERT INTO tokengate_markers (name) VALUES ($1) ON CONFLICT DO NOTHING", {marker});
        if (!set)
          return set.error();
      }
      return {};
    });
  }();
  return settled(written, record.id, &record);
}

// A write whose session broke during COMMIT may have been committed all the same (the reply was
// lost): the record the database holds now tells. `intended` is the record the write leaves
// (nullptr: none). Its digest is new and random, or its payload new (the time and author of the
// change), so finding it proves the commit; finding anything else leaves `commit_unknown` (the
// commit may still be under way).
result<void> pg_store::settled(const result<void>& written, std::string_view id,
                               const token_record* intended) const {
  if (written || written.error() != errc::commit_unknown)
    return written;
  auto now = get(id);
  const bool done = now && (intended ? *now && (*now)->value_digest == intended->value_digest &&
                                           (*now)->payload == intended->payload
                                     : !*now);
  if (on_lost_commit_)
    on_lost_commit_(id, done);
  return done ? result<void>{} : written;
}

result<void> pg_store::put_many(std::span<const token_record> records) {
  std::lock_guard lock(mutex_);
  return in_transaction(conn_, [&]() -> result<void> {
    for (const auto& r : records)
      if (auto done = upsert_logged(r); !done)
        return done;
    return {};
  });
}

result<bool> pg_store::erase(std::string_view id) {
  std::lock_guard lock(mutex_);
  return in_transaction(conn_, [&]() -> result<bool> {
    auto gone = conn_.exec("DELETE FROM tokengate_tokens WHERE id = $1 RETURNING id", {id});
    if (!gone)
      return {boost::system::in_place_error, gone.error()};
    if (gone->empty())
      return false;
    if (auto logged = log_change(id); !logged)
      return {boost::system::in_place_error, logged.error()};
    return true;
  });
}

// Under READ COMMITTED a row another transaction changed meanwhile is checked again as that
// one left it: the condition sees the latest committed record, never the one read before.
result<void> pg_store::replace(const token_record& record, const token_record& expected) {
  if (record.id != expected.id)
    return errc::stale;
  auto written = [&] {
    std::lock_guard lock(mutex_);
    return in_transaction(conn_, [&]() -> result<void> {
      auto updated =
          conn_.exec("UPDATE tokengate_tokens SET digest = decode($2, 'hex'), payload = $3 "
                     "WHERE id = $1 AND digest = decode($4, 'hex') AND payload = $5 RETURNING id",
                     {record.id, hex(record.value_digest), record.payload,
                      hex(expected.value_digest), expected.payload});
      if (!updated)
        return updated.error();
      if (updated->empty())
        return errc::stale;
      return log_change(record.id);
    });
  }();
  return settled(written, record.id, &record);
}

result<void> pg_store::erase_if(const token_record& expected) {
  auto written = [&] {
    std::lock_guard lock(mutex_);
    return in_transaction(conn_, [&]() -> result<void> {
      auto gone = conn_.exec("DELETE FROM tokengate_tokens "
                             "WHERE id = $1 AND digest = decode($2, 'hex') AND payload = $3 "
                             "RETURNING id",
                             {expected.id, hex(expected.value_digest), expected.payload});
      if (!gone)
        return gone.error();
      if (gone->empty())
        return errc::stale;
      return log_change(expected.id);
    });
  }();
  return settled(written, expected.id, nullptr);
}

result<std::vector<token_record>> pg_store::scan(std::string_view after_id,
                                                 std::size_t limit) const {
  std::lock_guard lock(mutex_);
  if (auto opened = conn_.connect(); !opened)
    return opened.error();
  auto rows = conn_.exec("SELECT " + std::string(record_columns) +
                             " FROM tokengate_tokens WHERE id > $1 ORDER BY id LIMIT $2",
                         {after_id, std::to_string(limit)});
  if (!rows)
    return rows.error();
  std::vector<token_record> page;
  page.reserve(rows->size());
  for (const auto& row : *rows) {
    auto r = record_from_row(row);
    if (!r)
      return r.error();
    page.push_back(std::move(*r));
  }
  return page;
}

result<void> pg_store::write_last_used(std::span<const usage> notes) {
  if (notes.empty())
    return {};
  std::lock_guard lock(mutex_);
  if (auto opened = conn_.connect(); !opened)
    return opened;
  auto done = conn_.exec("UPDATE tokengate_tokens t SET last_used = v.at "
                         "FROM unnest($1::text[], $2::bigint[]) AS v(id, at) "
                         "WHERE t.id = v.id AND (t.last_used IS NULL OR t.last_used < v.at)",
                         {text_array(notes), int_array(notes)});
  if (!done)
    return done.error();
  return {};
}

result<bool> pg_store::has_marker(std::string_view marker) const {
  std::lock_guard lock(mutex_);
  if (auto opened = conn_.connect(); !opened)
    return {boost::system::in_place_error, opened.error()};
  auto rows = conn_.exec("SELECT 1 FROM tokengate_markers WHERE name = $1", {marker});
  if (!rows)
    return {boost::system::in_place_error, rows.error()};
  return !rows->empty();
}

result<void> pg_store::flush() { return {}; }

result<void> pg_store::import_markers(std::span<const std::string> markers) {
  std::lock_guard lock(mutex_);
  return in_transaction(conn_, [&]() -> result<void> {
    for (const auto& m : markers)
      if (auto set = conn_.exec(
              "INSERT INTO tokengate_markers (name) VALUES ($1) ON CONFLICT DO NOTHING", {m});
          !set)
        return set.error();
    return {};
  });
}

result<std::size_t> pg_store::import(std::span<const token_record> records, std::string& clash) {
  std::lock_guard lock(mutex_);
  return in_transaction(conn_, [&]() -> result<std::size_t> {
    std::size_t added = 0;
    for (const auto& r : records) {
      auto existing = conn_.exec("SELECT id, encode(digest, 'hex'), payload FROM tokengate_tokens "
                                 "WHERE id = $1 OR digest = decode($2, 'hex')",
                                 {r.id, hex(r.value_digest)});
      if (!existing)
        return existing.error();
      if (!existing->empty()) {
        const auto& row = existing->front();
        if (existing->size() > 1 || row[0] != r.id || row[1] != hex(r.value_digest) ||
            row[2] != r.payload) {
          clash = r.id;
          return errc::conflict;
        }
        continue;
      }
      if (auto done = upsert_logged(r); !done)
        return done.error();
      if (r.last_used)
        if (auto u = conn_.exec("UPDATE tokengate_tokens SET last_used = $2 WHERE id = $1",
                                {r.id, std::to_string(*r.last_used)});
            !u)
          return u.error();
      ++added;
    }
    return added;
  });
}

} // namespace tokengate::store
