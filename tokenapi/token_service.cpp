#include "tokenapi/token_service.hpp"

#include "tokenapi/plain_record.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <malloc.h>

#include <span>
#include <thread>

namespace tokengate::tokenapi {
namespace {

constexpr std::size_t load_page = 10'000;

api_error not_found_error() { return not_found("api token not found"); }

// How many times a change is read and written again while other sidecars keep changing the
// same token under it.
constexpr int write_attempts = 8;

api_error contended() {
  return api_error{503, "the api token was changed elsewhere at the same time, again and again; "
                        "nothing was changed, try again"};
}

// Runs `once` (one read-modify-write) until it writes (a value), fails (an error), or has found
// the token changed under it `write_attempts` times (nullopt each).
template <class F>
auto retried(F&& once) -> api_result<typename decltype(once())::value_type::value_type> {
  for (int attempt = 0; attempt < write_attempts; ++attempt) {
    auto done = once();
    if (!done)
      return done.error();
    if (*done)
      return {boost::system::in_place_value, std::move(**done)};
  }
  return contended();
}

// A failed write as the caller hears it: one whose commit may have been made all the same (the
// database's reply lost, and the record found unchanged or not at all when read again) is not
// said to have changed nothing.
api_error write_failed(const boost::system::error_code& e) {
  if (e == store::errc::commit_unknown)
    return {503, "the token database was lost while committing this change: it may have been "
                 "applied; read the token to see"};
  return unavailable();
}

// A fleet's write the database committed but this sidecar's replica did not take: it stands
// (the caller is answered as for any write). The follower later applies the change from the
// log as a change from the digest the replica holds to the database's record, dropping that
// digest from the authorizer. So the authorizer must never hold a token under a digest the
// replica does not hold: had it published a new token's or a rotation's new digest, a later
// delete or rotation elsewhere, applied from the replica, would never drop it, and the key
// would be accepted here until a restart. Those are refused here (failing closed) until the
// follower brings the record in. An update keeps the digest the replica holds: it is published
// at once (a narrowing holds at once), keyed as the replica is.
template <class T> bool replica_behind(const store::result<T>& written) {
  return !written && written.error() == store::errc::replica_behind;
}

} // namespace

token_service::token_service(store::token_store& store, authorizer& auth, const clock& clock)
    : store_(store), auth_(auth), clock_(clock) {}

// Decodes `records` and hands them to the authorizer: those of the shape the store mostly
// holds without a JSON document, the rest (a lifecycle, an unusual spelling) decoded whole.
token_service::load_report
token_service::load_records(std::span<const store::token_record> records) {
  load_report report;
  std::vector<plain_token> plain;
  std::vector<cidr_block> blocks;
  std::vector<token> whole;
  plain.reserve(records.size());
  for (const auto& r : records) {
    if (auto p = read_plain_record(r, blocks)) {
      plain.push_back(*p);
      continue;
    }
    auto t = decode_record(r);
    if (!t) {
      ++report.unreadable;
      continue;
    }
    if (t->previous_expires_at && *t->previous_expires_at <= clock_.now()) {
      // The overlap ended while the sidecar was down: the replaced value is not indexed.
      t->previous_digest.reset();
      t->previous_expires_at.reset();
      t->previous_last_used_at.reset();
    }
    whole.push_back(std::move(*t));
  }
  auth_.load(plain, blocks);
  auth_.load(whole);
  report.loaded = plain.size() + whole.size();
  return report;
}

store::result<token_service::load_report> token_service::load() {
  // Two threads: a helper decodes most of each page while this one reads the next page from
  // the store and decodes the rest (decoding costs about three times the reading).
  load_report report;
  auto records = store_.scan({}, load_page);
  while (records) {
    const auto& batch = *records;
    const auto split = batch.size() * 2 / 5;
    load_report helped;
    std::thread helper([&] { helped = load_records(std::span(batch).subspan(split)); });
    store::result<std::vector<store::token_record>> next = std::vector<store::token_record>{};
    if (batch.size() == load_page)
      next = store_.scan(batch.back().id, load_page);
    const auto own = load_records(std::span(batch).first(split));
    helper.join();
    report.loaded += own.loaded + helped.loaded;
    report.unreadable += own.unreadable + helped.unreadable;
    if (next && next->empty())
      break;
    records = std::move(next);
  }
  if (!records)
    return records.error();
  // The pages decoded above leave free memory behind: give it back to the system.
  ::malloc_trim(0);
  return report;
}

api_result<token> token_service::load_token(std::string_view id) const {
  auto current = load_for_change(id);
  if (!current)
    return current.error();
  return std::move(current->t);
}

api_result<token_service::loaded> token_service::load_for_change(std::string_view id) const {
  auto record = store_.get(id);
  if (!record)
    return unavailable();
  if (!*record)
    return not_found_error();
  auto t = decode_record(**record);
  if (!t)
    return api_error{500, "stored token is unreadable"};
  with_live_notes(*t);
  return loaded{std::move(**record), std::move(*t)};
}

void token_service::with_live_notes(token& t) const {
  const auto seconds_of = [](std::int64_t s) { return timestamp(std::chrono::seconds(s)); };
  // The in-memory notes are fresher than the store's, which is written in the background.
  if (auto live = auth_.find(t.value_digest)) {
    if (const auto seconds = live->last_used(); seconds != 0)
      t.last_used_at = seconds_of(seconds);
    if (const auto seconds = live->previous_last_used();
        seconds != 0 && live->has_previous() && t.previous_digest == live->previous_digest())
      t.previous_last_used_at = seconds_of(seconds);
  }
  if (!t.overlapping(clock_.now())) {
    t.previous_digest.reset();
    t.previous_expires_at.reset();
    t.previous_last_used_at.reset();
  }
}

// A new id, which no other sidecar can be writing: no condition needed.
api_result<void> token_service::save_new(const token& t, std::string_view marker) {
  store::token_record record{t.id, t.value_digest, encode_payload(t), std::nullopt};
  auto written = store_.put(record, marker);
  if (!written && !replica_behind(written))
    return write_failed(written.error());
  if (written)
    auth_.publish(t.value_digest, auth_entry::from(t), nullptr);
  return {};
}

api_result<bool> token_service::save_over(const token& t, const store::token_record& expected,
                                          const store::digest* replaced) {
  store::token_record record{t.id, t.value_digest, encode_payload(t), std::nullopt};
  auto written = store_.replace(record, expected);
  if (replica_behind(written) && t.value_digest != expected.value_digest) {
    // Written, but this sidecar's replica still holds `expected`: a rotation is refused here
    // (both values) until the follower brings the write in, so that the view never holds a
    // digest the replica does not (see replica_behind above).
    auth_.remove(expected.value_digest);
    return {boost::system::in_place_value, true};
  }
  if (!written && !replica_behind(written)) {
    if (written.error() != store::errc::stale)
      return write_failed(written.error());
    if (auto caught_up = catch_up(t.id); !caught_up)
      return caught_up.error();
    return {boost::system::in_place_value, false};
  }
  auto entry = auth_entry::from(t);
  if (auto previous = auth_.find(replaced ? *replaced : t.value_digest))
    entry->carry_over(*previous);
  auth_.publish(t.value_digest, std::move(entry), replaced);
  return {boost::system::in_place_value, true};
}

api_result<void> token_service::catch_up(std::string_view id) {
  auto change = store_.refresh(id);
  if (!change)
    return unavailable();
  if (*change)
    apply(**change);
  return {};
}

api_result<token_service::issued> token_service::insert(token t, std::string_view marker,
                                                        std::optional<std::string> value) {
  if (!value)
    value = generate_value();
  auto id = generate_id();
  if (!value || !id)
    return api_error{503, "random number generator unavailable"};
  t.id = std::move(*id);
  t.value_digest = digest_of(*value);
  if (auto saved = save_new(t, marker); !saved)
    return saved.error();
  return issued{std::move(t), std::move(*value)};
}

api_result<token_service::issued> token_service::create(const auth_entry& caller,
                                                        const token_spec& spec) {
  if (!caller.permissions().includes(spec.permissions))
    return forbidden("cannot grant permissions the caller does not hold: " +
                     spec.permissions.minus(caller.permissions()).join(", "));
  const auto now = clock_.now();
  token t;
  t.name = spec.name;
  t.permissions = spec.permissions;
  t.allowed_cidr_blocks = spec.allowed_cidr_blocks;
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = actor::token(std::string(caller.id()));
  t.expires_at = spec.expires_at.value_or(std::nullopt);
  t.rate_limit = spec.rate_limit.value_or(std::nullopt);
  std::lock_guard lock(write_mutex_);
  return insert(std::move(t));
}

api_result<token> token_service::get(std::string_view id) const { return load_token(id); }

api_result<token> token_service::update(const auth_entry& caller, std::string_view id,
                                        const token_spec& spec, token* replaced) {
  if (!caller.permissions().includes(spec.permissions))
    return forbidden("cannot grant permissions the caller does not hold: " +
                     spec.permissions.minus(caller.permissions()).join(", "));
  std::lock_guard lock(write_mutex_);
  return retried([&] { return update_once(caller, id, spec, replaced); });
}

api_result<std::optional<token>> token_service::update_once(const auth_entry& caller,
                                                            std::string_view id,
                                                            const token_spec& spec,
                                                            token* replaced) {
  auto current = load_for_change(id);
  if (!current)
    return current.error();
  auto& t = current->t;
  const token before = t;
  // A token changing itself holds what the store says it holds now: a lowering of its
  // permissions elsewhere that raced this request (and made it read again) is not undone.
  if (t.id == caller.id() && !t.permissions.includes(spec.permissions))
    return forbidden("cannot grant permissions the caller does not hold: " +
                     spec.permissions.minus(t.permissions).join(", "));
  t.name = spec.name;
  t.permissions = spec.permissions;
  t.allowed_cidr_blocks = spec.allowed_cidr_blocks;
  if (spec.expires_at)
    t.expires_at = *spec.expires_at;
  if (spec.rate_limit)
    t.rate_limit = *spec.rate_limit;
  t.updated_at = clock_.now();
  t.updated_by = actor::token(std::string(caller.id()));
  auto saved = save_over(t, current->record, nullptr);
  if (!saved)
    return saved.error();
  if (!*saved)
    return std::optional<token>{};
  if (replaced)
    *replaced = before;
  return std::optional<token>{std::move(t)};
}

api_result<void> token_service::erase(std::string_view id, token* replaced) {
  std::lock_guard lock(write_mutex_);
  auto done = retried([&] { return erase_once(id, replaced); });
  if (!done)
    return done.error();
  return {};
}

// Deletes the record as read, so that the digest dropped from the authorizer is the one the
// store held.
api_result<std::optional<bool>> token_service::erase_once(std::string_view id, token* replaced) {
  auto record = store_.get(id);
  if (!record)
    return unavailable();
  if (!*record)
    return not_found_error();
  auto erased = store_.erase_if(**record);
  if (!erased && !replica_behind(erased)) {
    if (erased.error() != store::errc::stale)
      return write_failed(erased.error());
    if (auto caught_up = catch_up(id); !caught_up)
      return caught_up.error();
    return std::optional<bool>{};
  }
  auth_.remove((*record)->value_digest);
  if (replaced)
    if (auto t = decode_record(**record))
      *replaced = std::move(*t);
  return std::optional<bool>{true};
}

api_result<token_service::issued> token_service::rotate(const auth_entry& caller,
                                                        std::string_view id,
                                                        std::chrono::seconds overlap,
                                                        token* replaced) {
  std::lock_guard lock(write_mutex_);
  return retried([&] { return rotate_once(caller, id, overlap, replaced); });
}

api_result<std::optional<token_service::issued>>
token_service::rotate_once(const auth_entry& caller, std::string_view id,
                           std::chrono::seconds overlap, token* replaced) {
  auto current = load_for_change(id);
  if (!current)
    return current.error();
  auto& t = current->t;
  const token before = t;
  if (!caller.permissions().includes(t.permissions))
    return forbidden("cannot rotate a token that holds permissions the caller does not hold: " +
                     t.permissions.minus(caller.permissions()).join(", "));
  auto value = generate_value();
  if (!value)
    return api_error{503, "random number generator unavailable"};
  const auto old_digest = t.value_digest;
  const auto now = clock_.now();
  t.value_digest = digest_of(*value);
  t.rotated_at = now;
  // A rotation ends the overlap of the one before: only the value it replaces may live on.
  t.previous_digest.reset();
  t.previous_expires_at.reset();
  t.previous_last_used_at.reset();
  if (overlap.count() > 0) {
    t.previous_digest = old_digest;
    t.previous_expires_at = now + overlap;
  }
  auto saved = save_over(t, current->record, &old_digest);
  if (!saved)
    return saved.error();
  if (!*saved)
    return std::optional<issued>{};
  if (replaced)
    *replaced = before;
  return std::optional<issued>{issued{std::move(t), std::move(*value)}};
}

api_result<token_service::page> token_service::list(std::string_view after_id,
                                                    std::size_t limit) const {
  // One more than asked tells whether a next page exists, so `next` never leads nowhere.
  auto records = store_.scan(after_id, limit + 1);
  if (!records)
    return unavailable();
  page p;
  const bool more = records->size() > limit;
  if (more)
    records->resize(limit);
  for (const auto& r : *records) {
    auto t = decode_record(r);
    if (!t)
      continue;
    with_live_notes(*t);
    p.tokens.push_back(std::move(*t));
  }
  if (more && !records->empty())
    p.last_id = records->back().id;
  return p;
}

bool token_service::healthy() const { return store_.has_marker("readiness-probe").has_value(); }

store::result<std::size_t> token_service::flush_usage() {
  auto notes = auth_.take_usage();
  if (notes.empty())
    return std::size_t{0};
  if (auto written = store_.write_last_used(notes); !written) {
    auth_.usage_not_written();
    return written.error();
  }
  auth_.usage_written();
  return notes.size();
}

} // namespace tokengate::tokenapi
