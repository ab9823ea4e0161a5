#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// The `next` of a list page: the base64url (unpadded) of the last id on it, opaque to clients
/// and checkable here.
[[nodiscard]] std::string encode_cursor(std::string_view id);

/// The id a cursor of `encode_cursor` names; nullopt when `cursor` is not base64url or does not
/// decode to a token id.
[[nodiscard]] std::optional<std::string> decode_cursor(std::string_view cursor);

} // namespace tokengate::tokenapi
