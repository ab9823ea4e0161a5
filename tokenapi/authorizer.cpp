#include "tokenapi/authorizer.hpp"

#include "tokenapi/token.hpp"
#include "tokenapi/token_value.hpp"

#include <algorithm>
#include <iterator>
#include <unordered_set>

namespace tokengate::tokenapi {

unsigned decision::status() const noexcept {
  switch (outcome) {
  case verdict::allow:
    return 200;
  case verdict::address_not_allowed:
  case verdict::missing_permission:
    return 403;
  default:
    return 401;
  }
}

std::string decision::message(const ip_address& client) const {
  switch (outcome) {
  case verdict::allow:
    return "allowed";
  case verdict::missing_key:
    return "missing X-API-Key header";
  case verdict::malformed_key:
    return "malformed API key";
  case verdict::unknown_key:
    return "invalid API key";
  case verdict::expired_key:
    return "API key has expired";
  case verdict::address_not_allowed:
    return "this API key may not be used from " + client.to_string();
  case verdict::stale_tokens:
    return "tokens cannot be checked: this sidecar has lost its token database for too long";
  case verdict::missing_permission:
    return "API key lacks the permission" + std::string(missing.size() > 1 ? "s " : " ") +
           missing.join(", ");
  }
  return "denied";
}

decision authorizer::decide(std::optional<std::string_view> key, const ip_address& client,
                            permission_set required, timestamp now) const {
  decision d;
  if (!key) {
    d.outcome = verdict::missing_key;
    return d;
  }
  if (!well_formed(*key)) {
    d.outcome = verdict::malformed_key;
    return d;
  }
  if (closed_.load(std::memory_order_relaxed) || past_fresh()) {
    d.outcome = verdict::stale_tokens;
    return d;
  }
  const auto digest = digest_of(*key);
  d.token = find(digest);
  if (!d.token) {
    d.outcome = verdict::unknown_key;
    return d;
  }
  const auto seconds = now.time_since_epoch().count();
  d.previous_value = d.token->has_previous() && d.token->previous_digest() == digest;
  if (d.previous_value && d.token->previous_expires_at() <= seconds) {
    // Past its overlap, a replaced value is as unknown as one replaced without.
    d = {};
    d.outcome = verdict::unknown_key;
    return d;
  }
  if (d.token->expires_at() <= seconds) {
    d.outcome = verdict::expired_key;
    return d;
  }
  if (d.previous_value)
    d.token->set_previous_last_used(seconds);
  note_use(d.token, now);
  if (!d.token->allows(client)) {
    d.outcome = verdict::address_not_allowed;
    return d;
  }
  d.missing = required.minus(d.token->permissions());
  d.outcome = d.missing.empty() ? verdict::allow : verdict::missing_permission;
  return d;
}

void authorizer::note_use(const std::shared_ptr<const auth_entry>& e, timestamp now) const {
  const auto seconds = now.time_since_epoch().count();
  if (e->last_used() == seconds)
    return;
  e->set_last_used(seconds);
  if (!e->queue_usage())
    return;
  std::lock_guard lock(usage_mutex_);
  usage_queue_.push_back(e);
}

authorizer::authorizer() = default;

const store::digest& authorizer::key_of::operator()(std::uint32_t value) const noexcept {
  if (value & published_bit)
    return owner->published[value & ~published_bit].digest;
  return owner->record(value).digest;
}

void authorizer::shard::put(const store::digest& d, std::uint32_t value) {
  drop(table.insert_or_assign(d, value));
}

// A loaded record stays where it is; a published one is released for reuse.
void authorizer::shard::drop(std::optional<std::uint32_t> value) noexcept {
  if (!value || !(*value & published_bit))
    return;
  const auto i = *value & ~published_bit;
  if (is_previous(published[i]))
    --previous_records;
  published[i].entry.reset();
  free_published.push_back(i);
}

const char* authorizer::shard::keep_text(std::string_view id, std::string_view name) {
  const auto size = id.size() + name.size();
  if (size > text_block) {
    text.push_back(std::make_unique<char[]>(size));
    text_used = text_block; // the current block stays full
  } else if (text_used + size > text_block) {
    text.push_back(std::make_unique<char[]>(text_block));
    text_used = 0;
  }
  char* at = size > text_block ? text.back().get() : text.back().get() + text_used;
  if (size <= text_block)
    text_used += size;
  std::memcpy(at, id.data(), id.size());
  std::memcpy(at + id.size(), name.data(), name.size());
  return at;
}

void authorizer::shard::add_loaded(const plain_token& t, const grant* g) {
  if (loaded % chunk_size == 0)
    chunks.push_back(std::make_unique<loaded_record[]>(chunk_size));
  const auto i = static_cast<std::uint32_t>(loaded);
  auto& r = chunks.back()[i % chunk_size];
  r.digest = t.value_digest;
  const auto id = t.id.substr(0, 0xffff);
  const auto name = t.name.substr(0, 0xffff);
  r.entry.set(t.expires_at, t.last_used, keep_text(id, name), id, name, g);
  ++loaded;
  put(r.digest, i);
}

namespace {

// The grant index's key: the permissions and the blocks, so that a million tokens each pinned
// to a block of its own find theirs without comparing all the others.
std::uint64_t grant_key(permission_set permissions, std::span<const cidr_block> blocks) {
  std::uint64_t h = permissions.bits() * 0x9e3779b97f4a7c15ULL;
  const auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 0x100000001b3ULL; };
  for (const auto& b : blocks) {
    std::uint64_t first = 0;
    std::uint64_t second = 0;
    std::memcpy(&first, b.network().bytes().data(), 8);
    std::memcpy(&second, b.network().bytes().data() + 8, 8);
    mix(first);
    mix(second);
    mix(b.prefix_length() | (b.network().is_v4() ? 0x100U : 0U));
  }
  return h ^ (h >> 29);
}

} // namespace

const grant* authorizer::intern(permission_set permissions, std::span<const cidr_block> blocks) {
  std::lock_guard lock(grants_mutex_);
  auto& candidates = grant_index_[grant_key(permissions, blocks)];
  for (const auto* g : candidates)
    if (g->permissions == permissions && std::ranges::equal(g->allowed_cidr_blocks, blocks))
      return g;
  auto& g = grants_.emplace_back(
      grant{permissions, permissions.join(","), {blocks.begin(), blocks.end()}});
  candidates.push_back(&g);
  return &g;
}

void authorizer::add_plain(const plain_token& t, std::span<const cidr_block> blocks,
                           const grant*& g) {
  // Tokens side by side mostly grant the same: skip the shared index then.
  if (!g || g->permissions != t.permissions || !std::ranges::equal(g->allowed_cidr_blocks, blocks))
    g = intern(t.permissions, blocks);
  auto& s = shard_for(t.value_digest);
  std::unique_lock lock(s.mutex);
  s.add_loaded(t, g);
}

void authorizer::load(std::span<const token> tokens) {
  const grant* g = nullptr;
  for (const auto& t : tokens) {
    if (auth_entry::has_lifecycle(t)) { // a rotation's overlap or a rate limit: few of them
      publish(t.value_digest, auth_entry::from(t));
      continue;
    }
    plain_token p{t.id,
                  t.name,
                  t.value_digest,
                  t.permissions,
                  0,
                  static_cast<std::uint32_t>(t.allowed_cidr_blocks.size()),
                  unix_seconds(t.expires_at),
                  unix_seconds(t.last_used_at)};
    add_plain(p, t.allowed_cidr_blocks, g);
  }
}

void authorizer::load(std::span<const plain_token> tokens, std::span<const cidr_block> blocks) {
  const grant* g = nullptr;
  for (const auto& t : tokens)
    add_plain(t, blocks.subspan(t.first_block, t.blocks), g);
}

void authorizer::publish(const store::digest& d, std::shared_ptr<const auth_entry> entry,
                         const store::digest* replaced) {
  const auto before = find(replaced ? *replaced : d);
  const auto keeps = [&](const store::digest& x) {
    return x == d || (entry->has_previous() && entry->previous_digest() == x);
  };
  if (replaced && !keeps(*replaced))
    erase(*replaced);
  if (before && before->has_previous() && !keeps(before->previous_digest()))
    erase(before->previous_digest());
  if (entry->has_previous()) {
    auto& p = shard_for(entry->previous_digest());
    std::unique_lock lock(p.mutex);
    p.add_published(entry->previous_digest(), entry);
  }
  auto& s = shard_for(d);
  std::unique_lock lock(s.mutex);
  s.add_published(d, std::move(entry));
}

void authorizer::shard::add_published(const store::digest& d,
                                      std::shared_ptr<const auth_entry> entry) {
  std::uint32_t i;
  if (free_published.empty()) {
    i = static_cast<std::uint32_t>(published.size());
    published.push_back({d, std::move(entry)});
  } else {
    i = free_published.back();
    free_published.pop_back();
    published[i] = {d, std::move(entry)};
  }
  if (is_previous(published[i]))
    ++previous_records;
  put(d, i | published_bit);
}

void authorizer::remove(const store::digest& d) {
  const auto entry = find(d);
  if (entry && entry->has_previous() && entry->previous_digest() != d)
    erase(entry->previous_digest());
  erase(d);
}

void authorizer::remove_tokens(std::span<const std::string> ids) {
  const std::unordered_set<std::string_view> wanted(ids.begin(), ids.end());
  remove_tokens_if([&](std::string_view id) { return wanted.contains(id); });
}

void authorizer::remove_tokens_if(const std::function<bool(std::string_view id)>& which) {
  std::vector<store::digest> found;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mutex);
    s.table.for_each([&](std::uint32_t i) {
      if (!(i & published_bit)) {
        if (const auto& r = s.record(i); which(r.entry.id()))
          found.push_back(r.digest);
      } else if (const auto& r = s.published[i & ~published_bit]; r.entry && which(r.entry->id()))
        found.push_back(r.digest);
    });
  }
  for (const auto& d : found)
    erase(d);
}

void authorizer::erase(const store::digest& d) {
  auto& s = shard_for(d);
  std::unique_lock lock(s.mutex);
  s.drop(s.table.erase(d));
}

std::shared_ptr<const auth_entry> authorizer::find(const store::digest& d) const {
  auto& s = shard_for(d);
  std::shared_lock lock(s.mutex);
  const auto i = s.table.find(d);
  if (!i)
    return nullptr;
  if (*i & published_bit)
    return s.published[*i & ~published_bit].entry;
  // Loaded records live as long as the authorizer: a pointer that owns nothing.
  return std::shared_ptr<const auth_entry>(std::shared_ptr<const auth_entry>(),
                                           &s.record(*i).entry);
}

std::size_t authorizer::count_expiring(timestamp now, std::chrono::seconds within) const {
  const auto from = now.time_since_epoch().count();
  const auto to = from + within.count();
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mutex);
    s.table.for_each([&](std::uint32_t i) {
      const auth_entry* e = nullptr;
      if (!(i & published_bit))
        e = &s.record(i).entry;
      else if (const auto& r = s.published[i & ~published_bit]; !is_previous(r))
        e = r.entry.get(); // a replaced value's digest names the same token: skipped
      n += e && e->expires_at() > from && e->expires_at() <= to;
    });
  }
  return n;
}

std::size_t authorizer::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mutex);
    n += s.table.size() - s.previous_records;
  }
  return n;
}

std::vector<store::usage> authorizer::take_usage() {
  usage_taken_ = {};
  {
    std::lock_guard lock(usage_mutex_);
    usage_taken_.swap(usage_queue_);
  }
  std::vector<store::usage> notes;
  notes.reserve(usage_taken_.size());
  for (const auto& e : usage_taken_) {
    e->usage_taken();
    notes.push_back({std::string(e->id()), e->last_used()});
  }
  return notes;
}

void authorizer::usage_not_written() {
  std::lock_guard lock(usage_mutex_);
  // Ahead of what was queued since: a token replaced meanwhile (a rotation) has its new entry
  // queued under the same id, and the later note of an id is the one that is kept.
  std::erase_if(usage_taken_, [](const auto& e) { return !e->queue_usage(); });
  usage_queue_.insert(usage_queue_.begin(), std::make_move_iterator(usage_taken_.begin()),
                      std::make_move_iterator(usage_taken_.end()));
  usage_taken_ = {};
}

void authorizer::usage_written() { usage_taken_ = {}; }

} // namespace tokengate::tokenapi
