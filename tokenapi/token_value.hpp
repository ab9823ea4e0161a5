#pragma once

#include "store/token_store.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// Token values: "tg_" + 43 base62 characters (256 bits from OpenSSL's CSPRNG) + 6 base62
/// characters of CRC-32 over everything before them. The checksum lets a mistyped or forged
/// key be refused without a store read; the prefix lets secret scanners find leaked keys.
inline constexpr std::string_view value_prefix = "tg_";
inline constexpr std::size_t value_length = 3 + 43 + 6;

/// A new random value, or nullopt if the CSPRNG failed.
[[nodiscard]] std::optional<std::string> generate_value();

/// Whether `value` has the shape and checksum of a value we generate. Constant work; no I/O.
[[nodiscard]] bool well_formed(std::string_view value) noexcept;

/// SHA-256 of the value: the only form in which a value is ever kept.
[[nodiscard]] store::digest digest_of(std::string_view value) noexcept;

/// Whether `text` holds something shaped like a key value: "tg_" and 40 or more base62
/// characters (a whole value, or one cut or extended by a paste). Paths and ids that go into
/// the logs and the audit trail are checked with it: an operator who pastes a key where its id
/// belongs must not leave the key there.
[[nodiscard]] bool holds_value(std::string_view text) noexcept;

/// Whether `text` holds a key value's characters after "tg_" (a key pasted without its prefix,
/// or with it in another case): 49 base62 characters whose checksum holds.
[[nodiscard]] bool holds_bare_value(std::string_view text) noexcept;

/// `text` with every key-shaped run's characters after "tg_" replaced by "[redacted]".
[[nodiscard]] std::string redact_values(std::string_view text);

/// A new random (version 4) UUID in lowercase text form, or nullopt if the CSPRNG failed.
[[nodiscard]] std::optional<std::string> generate_id();

/// Whether `text` is a lowercase UUID in 8-4-4-4-12 form.
[[nodiscard]] bool looks_like_id(std::string_view text) noexcept;

} // namespace tokengate::tokenapi
