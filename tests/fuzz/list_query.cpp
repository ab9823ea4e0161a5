// The query of GET /api-tokens and its cursor. Properties: a query with a broken %-escape is
// always refused, one without is refused only for a parameter given twice; a value found comes
// back unchanged when every byte of it is sent escaped; a cursor names a token id or nothing,
// and the cursor of that id names it again.
#include "tests/fuzz/fuzz_check.hpp"
#include "tokenapi/page_cursor.hpp"
#include "tokenapi/token.hpp"

#include <string>

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Written plainly here, apart from the parser: whether some '%' lacks two hex digits after it.
bool broken_escape(std::string_view query) {
  for (std::size_t i = 0; i < query.size(); ++i)
    if (query[i] == '%' &&
        (i + 2 >= query.size() || !is_hex(query[i + 1]) || !is_hex(query[i + 2])))
      return true;
  return false;
}

std::string escaped(std::string_view text) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text)
    out.append({'%', hex[c >> 4], hex[c & 0xf]});
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto query = tokengate::fuzz::as_text(data, size);
  for (std::string_view name : {"limit", "cursor"}) {
    const auto found = query_param(query, name);
    if (broken_escape(query)) {
      check(!found && found.error().status == 400, "a broken escape is a 400");
      continue;
    }
    if (!found) {
      check(found.error().status == 400 &&
                found.error().message.find("more than once") != std::string::npos,
            "a query without a broken escape is refused only for a repeated parameter");
      continue;
    }
    if (*found) {
      const auto again = query_param(std::string(name) + "=" + escaped(**found), name);
      check(again && *again && **again == **found, "an escaped value decodes to itself");
    }
  }
  if (const auto id = decode_cursor(query)) {
    check(sendable_id(*id), "a cursor names a token id");
    check(decode_cursor(encode_cursor(*id)) == *id, "the cursor of an id names it");
  }
  return 0;
}
