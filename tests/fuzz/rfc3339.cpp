// RFC 3339 timestamps. Property: a parsed time formats to text that parses to the same time.
#include "tokenapi/rfc3339.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto text = tokengate::fuzz::as_text(data, size);
  const auto t = parse_rfc3339(text);
  if (!t)
    return 0;
  check(text.find('\0') == std::string_view::npos, "no time from text with a NUL");
  const auto formatted = format_rfc3339(*t);
  const auto again = parse_rfc3339(formatted);
  check(again && *again == *t, "format and parse agree");
  check(format_rfc3339(*again) == formatted, "the formatted text is a fixed point");
  return 0;
}
