#pragma once

// Where an authorization verdict is counted (README "Metrics"), and which refusals a
// report-only route lets through (README "Report-only routes"): one explicit mapping, so that a
// new verdict cannot silently land in another's series.
#include "proxy/metrics.hpp"
#include "tokenapi/authorizer.hpp"

#include <optional>

namespace tokengate::proxy {

/// The `outcome` slot of tokengate_auth_decisions_total (an index into decision_outcomes).
[[nodiscard]] constexpr std::size_t decision_slot(tokenapi::verdict v) noexcept {
  using tokenapi::verdict;
  switch (v) {
  case verdict::allow:
    return 0;
  case verdict::missing_key:
    return 1;
  case verdict::malformed_key:
    return 2;
  case verdict::unknown_key:
    return 3;
  case verdict::expired_key:
    return 4;
  case verdict::address_not_allowed:
    return 5;
  case verdict::missing_permission:
    return 6;
  case verdict::stale_tokens:
    return stale_outcome;
  }
  return stale_outcome; // unreachable: every verdict is named above
}

/// The `reason` slot (an index into would_deny_reasons) under which a report-only route lets a
/// refusal through; nullopt for an authentication failure (no key, a malformed, unknown or
/// expired one, stale tokens), which is refused on every route.
[[nodiscard]] constexpr std::optional<std::size_t> report_only_slot(tokenapi::verdict v) noexcept {
  switch (v) {
  case tokenapi::verdict::address_not_allowed:
    return 0;
  case tokenapi::verdict::missing_permission:
    return 1;
  default:
    return std::nullopt;
  }
}

} // namespace tokengate::proxy
