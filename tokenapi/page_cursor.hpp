#pragma once

#include "tokenapi/api_error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// `text` with its %XX escapes decoded ('+' stays: the list's parameters never hold a space),
/// or nullopt when an escape is broken.
[[nodiscard]] std::optional<std::string> percent_decoded(std::string_view text);

/// The value of the query parameter `name` in `query` (nullopt when absent), names and values
/// percent-decoded as a URL's are. A 400 when any escape in the query is broken, or when `name`
/// is given twice (in any spelling), since servers disagree on which one counts.
[[nodiscard]] api_result<std::optional<std::string>> query_param(std::string_view query,
                                                                 std::string_view name);

/// The `next` of a list page: the base64url (unpadded) of the last id on it, opaque to clients
/// and checkable here.
[[nodiscard]] std::string encode_cursor(std::string_view id);

/// The id a cursor of `encode_cursor` names; nullopt when `cursor` is not base64url or does not
/// decode to a token id: any id a token may have (`sendable_id`), a fleet's row written around
/// the API included, not only the UUIDs the API makes.
[[nodiscard]] std::optional<std::string> decode_cursor(std::string_view cursor);

} // namespace tokengate::tokenapi
