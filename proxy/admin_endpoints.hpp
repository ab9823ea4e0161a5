#pragma once

#include "tokenapi/api.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace tokengate::proxy {

/// Fleet mode's view of the shared database, for /readyz.
struct fleet_state {
  bool synced = false;    ///< synced at least once (now or in an earlier run)
  bool connected = false; ///< the database answers now
  std::int64_t staleness_ms = 0;
};

/// What the admin endpoints report on.
struct admin_state {
  bool draining = false;                           ///< SIGTERM received
  bool store_healthy = false;                      ///< the token store answers reads
  std::optional<fleet_state> fleet = std::nullopt; ///< set in fleet mode
};

/// The admin listener's answer to a request (README "Admin endpoints"): GET or HEAD on /healthz
/// (200 while the process runs) and /readyz (200 when ready, 503 while draining or when the
/// store fails; in fleet mode 503 until the first sync, and the database's state and the
/// staleness in the body); 404 for other paths, 405 with Allow for other methods (on /metrics and
/// /reload too, whose GET and POST the server answers itself). `path` is normalised. A function
/// from request to response, as the token API's handler is.
[[nodiscard]] tokenapi::api_response admin_response(std::string_view method, std::string_view path,
                                                    const admin_state& state);

} // namespace tokengate::proxy
