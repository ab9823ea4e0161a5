#pragma once

#include "tokenapi/authorizer.hpp"
#include "tokenapi/rate_window.hpp"
#include "tokenapi/rfc3339.hpp"

#include <chrono>
#include <string>

namespace tokengate::proxy {

/// The response fields that tell a client about its key (README "Key lifecycle"), none of
/// them Panther's. Each is "<name>: <value>\r\n", appended to `out`:
///
/// - `X-Token-Rotated: expires=<RFC 3339>` when the request used the token's replaced value,
///   which works until then;
/// - `X-Token-Expires: <RFC 3339>` when the token expires within `expiry_warning` of `now`;
/// - `RateLimit-Policy: "default";q=<requests>;w=<seconds>` and
///   `RateLimit: "default";r=<remaining>;t=<seconds to the next window>` when the token has a
///   rate limit and `rate` is the outcome of counting this request (nullptr: not counted);
///   `Retry-After: <seconds>` too when that outcome is a refusal.
void append_key_fields(std::string& out, const tokenapi::auth_entry& token, bool previous_value,
                       const tokenapi::rate_window::outcome* rate, tokenapi::timestamp now,
                       std::chrono::seconds expiry_warning);

/// Whether `token` expires within `expiry_warning` of `now` (and has not expired yet).
[[nodiscard]] bool expires_soon(const tokenapi::auth_entry& token, tokenapi::timestamp now,
                                std::chrono::seconds expiry_warning) noexcept;

} // namespace tokengate::proxy
