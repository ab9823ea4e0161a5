#pragma once

// Hex digits, read the same way by every layer (the lowest one holds them): percent-escapes in
// paths and the token API's query, chunk sizes, and digests stored as text.

namespace tokengate::store {

/// The value of a hex digit (either case), or -1.
[[nodiscard]] constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace tokengate::store
