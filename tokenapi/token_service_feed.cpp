// The sink of a fleet's change feed: other sidecars' changes, as the follower applies them to
// the replica, published to the authorizer.
#include "tokenapi/plain_record.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_service.hpp"

#include <span>

namespace tokengate::tokenapi {

void token_service::exclusive(const std::function<void()>& sync) {
  std::lock_guard lock(write_mutex_);
  sync();
}

void token_service::apply(const store::replicated_change& change) {
  const store::digest* previous = change.previous ? &*change.previous : nullptr;
  // (Unless the digest is already here: replacing its entry keeps what that entry noted.)
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

void token_service::forget(std::span<const std::string> ids) { auth_.remove_tokens(ids); }

void token_service::forget_range(const store::id_range& range) {
  auth_.remove_tokens_if([&](std::string_view id) { return range.contains(id); });
}

void token_service::fail_closed(bool on) { auth_.fail_closed(on); }

void token_service::fresh_until(std::int64_t unix_ms) { auth_.fresh_until(unix_ms); }

} // namespace tokengate::tokenapi
