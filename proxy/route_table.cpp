#include "proxy/route_table.hpp"

#include "proxy/path.hpp"

#include <algorithm>

namespace tokengate::proxy {

route_table::route_table(std::vector<route> routes, std::optional<route> fallback)
    : routes_(std::move(routes)), fallback_(std::move(fallback)) {}

const route* route_table::match(std::string_view method, std::string_view path) const noexcept {
  for (const auto& r : routes_) {
    if (!under_prefix(path, r.prefix))
      continue;
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end())
      continue;
    return &r;
  }
  return fallback_ ? &*fallback_ : nullptr;
}

} // namespace tokengate::proxy
