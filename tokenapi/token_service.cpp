#include "tokenapi/token_service.hpp"

#include "tokenapi/bootstrap_file.hpp"
#include "tokenapi/plain_record.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <malloc.h>

#include <span>
#include <stdexcept>
#include <thread>

namespace tokengate::tokenapi {
namespace {

constexpr std::size_t load_page = 10'000;

api_error not_found_error() { return not_found("api token not found"); }

std::string bootstrap_marker(const store::digest& d) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::string m = "bootstrap:";
  for (auto b : d) {
    m.push_back(hex[b >> 4]);
    m.push_back(hex[b & 0xf]);
  }
  return m;
}

token bootstrap_token(timestamp now) {
  token t;
  t.name = "bootstrap";
  t.permissions = permission_set::all();
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = actor::system();
  return t;
}

std::runtime_error store_failure() {
  return std::runtime_error("token store unavailable at start-up");
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
  auto record = store_.get(id);
  if (!record)
    return unavailable();
  if (!*record)
    return not_found_error();
  auto t = decode_record(**record);
  if (!t)
    return api_error{500, "stored token is unreadable"};
  with_live_notes(*t);
  return std::move(*t);
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

api_result<void> token_service::save(const token& t, const store::digest* replaced,
                                     std::string_view marker) {
  store::token_record record{t.id, t.value_digest, encode_payload(t), std::nullopt};
  if (!store_.put(record, marker))
    return unavailable();
  auto entry = auth_entry::from(t);
  if (auto previous = auth_.find(replaced ? *replaced : t.value_digest))
    entry->carry_over(*previous);
  auth_.publish(t.value_digest, std::move(entry), replaced);
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
  if (auto saved = save(t, nullptr, marker); !saved)
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
                                        const token_spec& spec) {
  if (!caller.permissions().includes(spec.permissions))
    return forbidden("cannot grant permissions the caller does not hold: " +
                     spec.permissions.minus(caller.permissions()).join(", "));
  std::lock_guard lock(write_mutex_);
  auto t = load_token(id);
  if (!t)
    return t.error();
  t->name = spec.name;
  t->permissions = spec.permissions;
  t->allowed_cidr_blocks = spec.allowed_cidr_blocks;
  if (spec.expires_at)
    t->expires_at = *spec.expires_at;
  if (spec.rate_limit)
    t->rate_limit = *spec.rate_limit;
  t->updated_at = clock_.now();
  t->updated_by = actor::token(std::string(caller.id()));
  if (auto saved = save(*t, nullptr); !saved)
    return saved.error();
  return t;
}

api_result<void> token_service::erase(std::string_view id) {
  std::lock_guard lock(write_mutex_);
  auto record = store_.get(id);
  if (!record)
    return unavailable();
  if (!*record)
    return not_found_error();
  auto erased = store_.erase(id);
  if (!erased)
    return unavailable();
  auth_.remove((*record)->value_digest);
  return {};
}

api_result<token_service::issued>
token_service::rotate(const auth_entry& caller, std::string_view id, std::chrono::seconds overlap) {
  std::lock_guard lock(write_mutex_);
  auto t = load_token(id);
  if (!t)
    return t.error();
  if (!caller.permissions().includes(t->permissions))
    return forbidden("cannot rotate a token that holds permissions the caller does not hold: " +
                     t->permissions.minus(caller.permissions()).join(", "));
  auto value = generate_value();
  if (!value)
    return api_error{503, "random number generator unavailable"};
  const auto replaced = t->value_digest;
  const auto now = clock_.now();
  t->value_digest = digest_of(*value);
  t->rotated_at = now;
  // A rotation ends the overlap of the one before: only the value it replaces may live on.
  t->previous_digest.reset();
  t->previous_expires_at.reset();
  t->previous_last_used_at.reset();
  if (overlap.count() > 0) {
    t->previous_digest = replaced;
    t->previous_expires_at = now + overlap;
  }
  if (auto saved = save(*t, &replaced); !saved)
    return saved.error();
  return issued{std::move(*t), std::move(*value)};
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

token_service::bootstrap_outcome token_service::bootstrap(const std::filesystem::path& file) {
  auto content = read_bootstrap_file(file);
  if (!content)
    throw std::runtime_error(content.error().message());
  if (*content) {
    if (!well_formed(**content))
      throw std::runtime_error("bootstrap token file " + file.string() +
                               " does not hold a tokengate key (tg_..., see 'tokengate keygen')");
    return adopt_bootstrap(std::move(**content));
  }
  auto any = store_.scan("", 1);
  if (!any)
    throw store_failure();
  if (!any->empty())
    return bootstrap_outcome::not_needed;
  auto value = generate_value();
  if (!value)
    throw std::runtime_error("random number generator unavailable");
  // The file first: a crash before the token is stored leaves a file the next start adopts.
  if (auto written = write_bootstrap_file(file, *value); !written)
    throw std::runtime_error(written.error().message());
  // The marker first: computed within the same call, it could see the value already moved from.
  const auto marker = bootstrap_marker(digest_of(*value));
  std::lock_guard lock(write_mutex_);
  if (!insert(bootstrap_token(clock_.now()), marker, std::move(*value)))
    throw store_failure();
  return bootstrap_outcome::generated;
}

// The value of the file becomes the bootstrap token, unless it is one already or was once.
token_service::bootstrap_outcome token_service::adopt_bootstrap(std::string value) {
  const auto digest = digest_of(value);
  auto existing = store_.find(digest);
  if (!existing)
    throw store_failure();
  if (*existing)
    return bootstrap_outcome::present;
  const auto marker = bootstrap_marker(digest);
  auto seen = store_.has_marker(marker);
  if (!seen)
    throw store_failure();
  if (*seen)
    return bootstrap_outcome::revoked;
  std::lock_guard lock(write_mutex_);
  if (!insert(bootstrap_token(clock_.now()), marker, std::move(value)))
    throw store_failure();
  return bootstrap_outcome::created_from_file;
}

void token_service::exclusive(const std::function<void()>& sync) {
  std::lock_guard lock(write_mutex_);
  sync();
}

void token_service::apply(const store::replicated_change& change) {
  const store::digest* previous = change.previous ? &*change.previous : nullptr;
  // (Unless the digest is already here: a token this sidecar wrote whose replica write failed
  // comes back in a snapshot, and replacing its entry keeps what that entry noted.)
  if (change.from_snapshot && !previous && change.current &&
      !auth_.find(change.current->value_digest)) {
    // A snapshot's token new to this sidecar (all of them when it joins a fleet): held compact,
    // as the tokens read at start-up are, when it has no lifecycle. Not the log's: a record
    // held so stays in its chunk once removed, and tokens come and go for as long as it runs.
    std::vector<cidr_block> blocks;
    if (auto p = read_plain_record(*change.current, blocks)) {
      auth_.load(std::span(&*p, 1), blocks);
      return;
    }
  }
  auto before = previous ? auth_.find(*previous) : nullptr;
  std::optional<token> t;
  if (change.current)
    t = decode_record(*change.current);
  if (!t) { // deleted, or unreadable: unusable either way
    if (previous)
      auth_.remove(*previous);
    return;
  }
  auto entry = auth_entry::from(*t);
  if (before)
    entry->carry_over(*before);
  auth_.publish(t->value_digest, std::move(entry), previous);
}

void token_service::fail_closed(bool on) { auth_.fail_closed(on); }

bool token_service::healthy() const { return store_.has_marker("readiness-probe").has_value(); }

store::result<std::size_t> token_service::flush_usage() {
  auto notes = auth_.take_usage();
  if (notes.empty())
    return std::size_t{0};
  if (auto written = store_.write_last_used(notes); !written)
    return written.error();
  return notes.size();
}

} // namespace tokengate::tokenapi
