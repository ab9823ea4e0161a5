#pragma once

#include "store/token_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tokengate::store {

/// The ids after `after` up to `upto` in byte order (every id after `after` when `upto` is
/// nullopt; an empty `after`: from the first): a page of a snapshot.
struct id_range {
  std::string after;
  std::optional<std::string> upto;

  [[nodiscard]] bool contains(std::string_view id) const {
    return id > after && (!upto || id <= *upto);
  }
  /// The smallest range holding both.
  [[nodiscard]] id_range hull(const id_range& other) const {
    id_range h{std::min(after, other.after), std::nullopt};
    if (upto && other.upto)
      h.upto = std::max(*upto, *other.upto);
    return h;
  }
};

// replicated_change (token_store.hpp): one token as a fleet's change log left it, already
// applied to this sidecar's replica.

/// Where a change feed delivers: the domain's in-memory view of the tokens.
class change_sink {
public:
  virtual ~change_sink() = default;
  /// Runs `sync` (which reads the log, writes the replica and calls `apply`) with this process'
  /// own token writes held off, so that a change and a local write never overtake each other.
  virtual void exclusive(const std::function<void()>& sync) = 0;
  /// Publishes one change. Called only from within `exclusive`.
  virtual void apply(const replicated_change& change) = 0;
  /// Drops every value of these tokens from the view: the replica could not tell which digest
  /// it holds for them, and the database changed them. Walks the whole view (a failure path
  /// only). Called only from within `exclusive`.
  virtual void forget(std::span<const std::string> ids) = 0;
  /// Drops every value of the tokens whose ids lie in `range`: the replica could not tell what
  /// it holds of a snapshot's page, which may delete or change any of them. Walks the whole
  /// view (a failure path only). Called only from within `exclusive`.
  virtual void forget_range(const id_range& range) = 0;
  /// Turns failing closed on or off (the sidecar has been cut off for too long).
  virtual void fail_closed(bool on) = 0;
  /// With max_staleness_ms: keys are refused from this wall-clock time (Unix milliseconds) on,
  /// unless a later sync moves it. Each decision checks it, so the bound holds while the
  /// follower waits on a database that does not answer.
  virtual void fresh_until(std::int64_t unix_ms) = 0;
};

/// How fresh this sidecar's view of the fleet's tokens is. Thread-safe.
class sync_status {
public:
  /// Wall-clock milliseconds of the last successful sync; 0: never.
  [[nodiscard]] std::int64_t last_sync_ms() const { return last_sync_ms_.load(); }
  [[nodiscard]] bool ever_synced() const { return last_sync_ms() != 0; }
  [[nodiscard]] bool connected() const { return connected_.load(); }
  [[nodiscard]] std::int64_t applied_seq() const { return applied_seq_.load(); }
  /// Milliseconds since the last successful sync (0 when never synced).
  [[nodiscard]] std::int64_t staleness_ms() const {
    const auto last = last_sync_ms();
    return last == 0 ? 0 : std::max<std::int64_t>(0, now_ms() - last);
  }
  [[nodiscard]] static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void synced(std::int64_t at_ms) { last_sync_ms_.store(at_ms); }
  void set_connected(bool on) { connected_.store(on); }
  void set_applied(std::int64_t seq) { applied_seq_.store(seq); }

private:
  std::atomic<std::int64_t> last_sync_ms_{0};
  std::atomic<bool> connected_{false};
  std::atomic<std::int64_t> applied_seq_{0};
};

} // namespace tokengate::store
