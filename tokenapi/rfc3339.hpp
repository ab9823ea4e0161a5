#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

using timestamp = std::chrono::sys_seconds;

/// "2026-11-28T02:41:26Z": RFC 3339 in UTC, whole seconds.
[[nodiscard]] std::string format_rfc3339(timestamp t);

/// Why a date-time was refused, where a reason more precise than its shape helps the caller.
enum class rfc3339_refusal {
  malformed,   ///< not RFC 3339, or no such date
  leap_second, ///< second 60: RFC 3339 has it, a timestamp here does not
  out_of_range ///< in UTC, outside the years 0000 to 9999 (an offset can carry it there)
};

/// Parses RFC 3339 date-time ("2026-11-28T02:41:26Z", "2026-11-28T03:41:26.5+01:00"): any
/// offset, optional fraction (dropped). nullopt for anything else, including invalid dates,
/// with the reason in `why` when given.
[[nodiscard]] std::optional<timestamp> parse_rfc3339(std::string_view text,
                                                     rfc3339_refusal* why = nullptr) noexcept;

} // namespace tokengate::tokenapi
