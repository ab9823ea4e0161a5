// The request-head parser: scan_head, parse_request, request_framing, valid_host.
// Properties: a head that parses re-serialises to a head that parses the same; every refusal is
// an error value; the scan finds the same end whether fed at once or byte by byte.
#include "proxy/http1.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <string>

using namespace tokengate::proxy::http1;
using tokengate::fuzz::check;

namespace {

std::string serialise(const head& h) {
  std::string out;
  out.append(h.method).append(" ").append(h.target);
  out.append(h.version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& f : h.fields)
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  out.append("\r\n");
  return out;
}

void check_same(const head& a, const head& b) {
  check(a.method == b.method && a.target == b.target && a.version == b.version,
        "re-serialised start line parses the same");
  check(a.fields.size() == b.fields.size(), "re-serialised head has the same fields");
  for (std::size_t i = 0; i < a.fields.size(); ++i)
    check(a.fields[i].name == b.fields[i].name && a.fields[i].value == b.fields[i].value,
          "re-serialised field parses the same");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto input = tokengate::fuzz::as_text(data, size);

  std::size_t scanned = 0;
  const auto whole = scan_head(input, scanned);
  // Byte by byte, as a slow client sends it.
  std::size_t scanned_slowly = 0;
  boost::system::result<std::size_t, head_error> slow = std::size_t{0};
  for (std::size_t n = 1; n <= input.size(); ++n) {
    slow = scan_head(input.substr(0, n), scanned_slowly);
    if (!slow || *slow != 0)
      break;
  }
  check(slow == whole, "scan_head ignores how bytes arrive");
  if (!whole || *whole == 0)
    return 0;
  check(*whole <= input.size(), "head size within the input");

  head h;
  if (!parse_request(input.substr(0, *whole), h))
    return 0;
  check(!h.method.empty() && !h.target.empty(), "a parsed request has a method and a target");
  for (char c : h.method)
    check((c >= 'A' && c <= 'Z') || c == '-', "methods are upper case");
  check(h.fields.size() <= max_fields, "at most max_fields fields");

  const auto again_text = serialise(h);
  std::size_t again_scanned = 0;
  const auto again_scan = scan_head(again_text, again_scanned);
  check(again_scan && *again_scan == again_text.size(), "re-serialised head scans whole");
  head again;
  check(parse_request(again_text, again).has_value(), "re-serialised head parses");
  check_same(h, again);

  const auto f = request_framing(h);
  const auto f_again = request_framing(again);
  check(f.has_value() == f_again.has_value() &&
            (f ? f->type == f_again->type && f->length == f_again->length
               : f.error() == f_again.error()),
        "framing decided the same");
  check(!f || f->type != framing::kind::until_close, "requests are never delimited by close");
  if (auto host = h.find("host"))
    (void)valid_host(*host);
  (void)keeps_alive(h);

  head response;
  (void)parse_response(input.substr(0, *whole), response);
  return 0;
}
