// The upstream's response head: scan_head, parse_response, response_framing, keeps_alive. The
// upstream is not the client, but a broken or hostile one must not crash the proxy or make it
// misjudge where a response ends (what is left on a pooled connection reaches the next client).
// Properties: a head that parses re-serialises to a head that parses the same and is framed the
// same; bodies the method or status forbid are never expected; a length comes from exactly one
// Content-Length field and chunked framing from Transfer-Encoding without Content-Length.
#include "proxy/http1.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <charconv>
#include <string>

using namespace tokengate::proxy::http1;
using tokengate::fuzz::check;

namespace {

std::string serialise(const head& h) {
  std::string out = h.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out.append(std::to_string(h.status)).append(" Reason\r\n");
  for (const auto& f : h.fields)
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  out.append("\r\n");
  return out;
}

bool same_framing(const boost::system::result<framing, framing_error>& a,
                  const boost::system::result<framing, framing_error>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return a ? a->type == b->type && a->length == b->length : a.error() == b.error();
}

std::size_t count(const head& h, std::string_view name) {
  std::size_t n = 0;
  for (const auto& f : h.fields)
    n += iequals(f.name, name) ? 1 : 0;
  return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto input = tokengate::fuzz::as_text(data, size);
  std::size_t scanned = 0;
  const auto whole = scan_head(input, scanned);
  if (!whole || *whole == 0)
    return 0;
  head h;
  if (!parse_response(input.substr(0, *whole), h))
    return 0;
  check(h.status >= 100 && h.status <= 599, "a status is from 100 to 599");
  check(h.version == 10 || h.version == 11, "HTTP/1.0 or HTTP/1.1");
  check(h.fields.size() <= max_fields, "at most max_fields fields");

  const auto again_text = serialise(h);
  head again;
  check(parse_response(again_text, again).has_value(), "re-serialised head parses");
  check(again.status == h.status && again.version == h.version &&
            again.fields.size() == h.fields.size(),
        "re-serialised head parses the same");

  for (const std::string_view method : {"GET", "HEAD", "POST"}) {
    const auto f = response_framing(h, method);
    check(same_framing(f, response_framing(again, method)), "framing decided the same");
    const bool bodiless = method == "HEAD" || h.status < 200 || h.status == 204 || h.status == 304;
    if (bodiless) {
      check(f && f->type == framing::kind::none, "no body after HEAD, 1xx, 204 or 304");
      continue;
    }
    if (!f)
      continue;
    if (f->type == framing::kind::length) {
      check(count(h, "content-length") == 1 && count(h, "transfer-encoding") == 0,
            "a length comes from one Content-Length field alone");
      const auto text = *h.find("content-length");
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      check(ec == std::errc() && end == text.data() + text.size() && n == f->length,
            "the length is the field's decimal value");
    }
    if (f->type == framing::kind::chunked)
      check(count(h, "transfer-encoding") == 1 && count(h, "content-length") == 0 &&
                h.version == 11,
            "chunked comes from one Transfer-Encoding field without Content-Length, in HTTP/1.1");
    if (f->type == framing::kind::until_close)
      check(count(h, "transfer-encoding") == 0 && count(h, "content-length") == 0,
            "a body runs to the close only without framing fields");
  }
  (void)keeps_alive(h);
  (void)connection_of(h);
  return 0;
}
