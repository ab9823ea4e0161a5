#pragma once

#include "tokenapi/api_error.hpp"
#include "tokenapi/token.hpp"
#include "tokenapi/token_payload.hpp" // encode_payload and decode_record, long declared here

#include <boost/json/fwd.hpp>

#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// The API's JSON form of a token (OpenAPI `APITokenAPI.APIToken`). `value` is included only
/// when not empty (create and rotate answers); unset optional timestamps are left out.
[[nodiscard]] boost::json::object to_api_json(const token& t, std::string_view value = {});

/// Parses and validates the body of create and update (`APITokenAPI.ModifyAPIToken`, plus
/// `expiresAt`). Errors are 400s whose message names the offending field or value.
[[nodiscard]] api_result<token_spec> parse_token_spec(std::string_view body, timestamp now);

/// Parses the optional body of rotate (not in Panther's API): empty, or
/// `{"previousValueValidFor": <seconds, 0 to 604800>}`. The overlap in seconds (0: none).
/// Errors are 400s naming the field.
[[nodiscard]] api_result<std::int64_t> parse_rotate_body(std::string_view body);

/// `{"message": "..."}`, with anything shaped like a key value in `message` redacted.
[[nodiscard]] std::string error_body(std::string_view message);

} // namespace tokengate::tokenapi
