// Every authorization verdict is counted under its own outcome of
// tokengate_auth_decisions_total (README "Metrics"), and a report-only route lets through only
// address, permission and rate-limit refusals (README "Report-only routes").
#include "proxy/decision_metrics.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace tokengate;
using proxy::decision_outcomes;
using tokenapi::verdict;

namespace {

struct expected {
  verdict v;
  std::string_view outcome;
  std::optional<std::string_view> would_deny; ///< nullopt: refused even when report-only
};

constexpr expected all_verdicts[]{
    {verdict::allow, "allowed", std::nullopt},
    {verdict::missing_key, "missing_key", std::nullopt},
    {verdict::malformed_key, "malformed_key", std::nullopt},
    {verdict::unknown_key, "unknown_key", std::nullopt},
    {verdict::expired_key, "expired", std::nullopt},
    {verdict::address_not_allowed, "address_denied", "address_denied"},
    {verdict::missing_permission, "permission_denied", "permission_denied"},
    {verdict::stale_tokens, "stale", std::nullopt},
};

} // namespace

TEST_CASE("each verdict is counted under its own outcome", "[metrics]") {
  // The table names every verdict (they are numbered from 0 without gaps).
  REQUIRE(std::size(all_verdicts) == static_cast<std::size_t>(verdict::stale_tokens) + 1);
  std::set<std::size_t> slots;
  for (const auto& e : all_verdicts) {
    INFO(e.outcome);
    const auto slot = proxy::decision_slot(e.v);
    REQUIRE(slot < decision_outcomes.size());
    CHECK(decision_outcomes[slot] == e.outcome);
    CHECK(slot != proxy::no_route_outcome);
    slots.insert(slot);
  }
  CHECK(slots.size() == std::size(all_verdicts));
  CHECK(decision_outcomes[proxy::no_route_outcome] == "no_route");
}

TEST_CASE("a report-only route passes only address and permission refusals (and rate limits)",
          "[metrics][report-only]") {
  for (const auto& e : all_verdicts) {
    INFO(e.outcome);
    const auto slot = proxy::report_only_slot(e.v);
    CHECK(slot.has_value() == e.would_deny.has_value());
    if (slot && e.would_deny)
      CHECK(proxy::would_deny_reasons[*slot] == *e.would_deny);
  }
  CHECK(proxy::would_deny_reasons[proxy::would_deny_rate_limited] == "rate_limited");
}
