// The token-value checksum, and the redaction of key-shaped text. Properties: well_formed agrees
// with an independent check of the shape and CRC-32; a value made from any 43 base62 characters
// is well formed, and changing any one character of it makes it malformed; redacted text holds
// nothing key-shaped, and text without a key is not changed.
#include "tokenapi/token_value.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <boost/crc.hpp>

#include <string>

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;

namespace {

constexpr std::string_view digits =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string checksum_text(std::string_view head) {
  boost::crc_32_type crc;
  crc.process_bytes(head.data(), head.size());
  std::uint32_t v = crc.checksum();
  std::string out(6, '0');
  for (std::size_t i = 6; i-- > 0; v /= 62)
    out[i] = digits[v % 62];
  return out;
}

bool independent_check(std::string_view v) {
  if (v.size() != 52 || !v.starts_with("tg_"))
    return false;
  for (char c : v.substr(3))
    if (digits.find(c) == std::string_view::npos)
      return false;
  return v.substr(46) == checksum_text(v.substr(0, 46));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto text = tokengate::fuzz::as_text(data, size);
  check(well_formed(text) == independent_check(text), "well_formed agrees with the definition");
  (void)digest_of(text);
  (void)looks_like_id(text);
  // What goes into a log line or an error keeps nothing key-shaped, and changes nothing else.
  const auto redacted = redact_values(text);
  check(!holds_value(redacted), "no key-shaped run survives redaction");
  check(holds_value(text) || redacted == text, "text without a key is left as it is");

  if (size < 44)
    return 0;
  std::string value = "tg_";
  for (std::size_t i = 0; i < 43; ++i)
    value.push_back(digits[data[i] % 62]);
  value += checksum_text(value);
  check(well_formed(value), "a value with its checksum is well formed");
  const std::size_t at = 3 + data[43] % 49;
  const char replacement = digits[(digits.find(value[at]) + 1 + data[43] % 61) % 62];
  value[at] = replacement;
  check(!well_formed(value), "one changed character is caught");
  return 0;
}
