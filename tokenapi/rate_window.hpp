#pragma once

#include <atomic>
#include <cstdint>

namespace tokengate::tokenapi {

/// One token's request count in fixed windows of `per_seconds` (aligned to the Unix epoch), as
/// draft-ietf-httpapi-ratelimit-headers-10 describes them: a quota `q` per window `w`, the
/// remaining `r` and the seconds `t` to the next window.
///
/// Exact under concurrency: one compare-and-swap per request on one 8-byte word (the window's
/// number and its count), so no two requests take the same unit of quota. Thread-safe.
class rate_window {
public:
  struct outcome {
    bool allowed = true;
    std::uint32_t remaining = 0;     ///< requests left in this window after this one
    std::uint32_t reset_seconds = 0; ///< until the next window starts (at least 1)
  };

  /// Counts one request at `now` (Unix seconds) against `limit` requests per `per_seconds`
  /// (both at least 1). A refused request is not counted.
  [[nodiscard]] outcome take(std::uint32_t limit, std::uint32_t per_seconds,
                             std::int64_t now) noexcept {
    const auto window = static_cast<std::uint32_t>(now / per_seconds);
    const auto reset =
        static_cast<std::uint32_t>((static_cast<std::int64_t>(window) + 1) * per_seconds - now);
    auto word = state_.load(std::memory_order_relaxed);
    for (;;) {
      auto seen = static_cast<std::uint32_t>(word >> 32);
      auto count = static_cast<std::uint32_t>(word);
      // A thread whose clock read is a moment behind counts in the newer window, never resets it.
      if (seen < window) {
        seen = window;
        count = 0;
      }
      if (count >= limit)
        return {false, 0, reset};
      const auto next = static_cast<std::uint64_t>(seen) << 32 | (count + 1);
      if (state_.compare_exchange_weak(word, next, std::memory_order_relaxed))
        return {true, limit - count - 1, reset};
    }
  }

private:
  std::atomic<std::uint64_t> state_{0};
};

} // namespace tokengate::tokenapi
