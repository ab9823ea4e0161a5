#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

using timestamp = std::chrono::sys_seconds;

/// "2026-11-28T02:41:26Z": RFC 3339 in UTC, whole seconds.
[[nodiscard]] std::string format_rfc3339(timestamp t);

/// Parses RFC 3339 date-time ("2026-11-28T02:41:26Z", "2026-11-28T03:41:26.5+01:00"): any
/// offset, optional fraction (dropped). nullopt for anything else, including invalid dates.
[[nodiscard]] std::optional<timestamp> parse_rfc3339(std::string_view text) noexcept;

} // namespace tokengate::tokenapi
