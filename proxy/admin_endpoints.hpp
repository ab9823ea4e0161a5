#pragma once

#include "tokenapi/api.hpp"

#include <string_view>

namespace tokengate::proxy {

/// What the admin endpoints report on.
struct admin_state {
  bool draining = false;      ///< SIGTERM received
  bool store_healthy = false; ///< the token store answers reads
};

/// The admin listener's answer to a request (README "Admin endpoints"): GET or HEAD on /healthz
/// (200 while the process runs) and /readyz (200 when ready, 503 while draining or when the
/// store fails); 404 for other paths, 405 with Allow for other methods (on /metrics too, whose
/// GET the server answers itself). `path` is normalised.
/// A function from request to response, as the token API's handler is.
[[nodiscard]] tokenapi::api_response admin_response(std::string_view method, std::string_view path,
                                                    const admin_state& state);

} // namespace tokengate::proxy
