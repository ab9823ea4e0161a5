#pragma once

#include "tokenapi/permissions.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::proxy {

/// One entry of the `routes` table (README "Routes").
struct route {
  std::string prefix;               ///< normalised, e.g. "/alerts"; "/" matches every path
  std::vector<std::string> methods; ///< empty: every method
  bool open = false;                ///< "auth": "none": no key needed
  tokenapi::permission_set permissions;
  /// "enforce": false (report-only): decided as usual, but a refusal is only logged and
  /// counted (would_deny), and the request goes upstream.
  bool enforce = true;

  bool operator==(const route&) const = default;
};

/// The routes, built once at start-up and read concurrently: first match wins.
class route_table {
public:
  route_table() = default;
  /// `fallback`: the default route; nullopt denies what no route matches.
  route_table(std::vector<route> routes, std::optional<route> fallback);

  /// The route for a request, or nullptr when nothing matches and there is no default.
  [[nodiscard]] const route* match(std::string_view method, std::string_view path) const noexcept;

  [[nodiscard]] const std::vector<route>& routes() const noexcept { return routes_; }

private:
  std::vector<route> routes_;
  std::optional<route> fallback_;
};

} // namespace tokengate::proxy
