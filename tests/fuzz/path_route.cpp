// Path normalisation and route choice. Properties: normalisation is idempotent; a path the
// router sends to an open route stays under that route's prefix by every rule a backend may
// apply on top (decode every escape, once or twice; cut ';' parameters per segment before or
// after decoding; '\' as '/'; overlong UTF-8 as ASCII; Windows' trimming of trailing dots and
// spaces; then resolve dot segments), so it never reaches a protected one.
#include "proxy/path.hpp"
#include "proxy/route_table.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <string>
#include <vector>

using namespace tokengate::proxy;
using tokengate::fuzz::check;

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// The backend rules, each written plainly here, independent of the proxy's code.
std::string decode_all(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string cut_parameters(std::string_view s) {
  std::string out;
  bool in_parameter = false;
  for (char c : s) {
    if (c == '/')
      in_parameter = false;
    else if (c == ';')
      in_parameter = true;
    if (!in_parameter)
      out.push_back(c);
  }
  return out;
}

// A lenient UTF-8 decoder, of the old forms up to 6 bytes too: a form whose value is ASCII is
// that character ("\xC0\xAF" is '/', "\xE0\x80\xAE" and "\xF8\x80\x80\x80\xAE" are '.').
std::string overlong_as_ascii(std::string_view s) {
  std::string out;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto lead = byte(i);
    const std::size_t more = lead >= 0xFC   ? 5
                             : lead >= 0xF8 ? 4
                             : lead >= 0xF0 ? 3
                             : lead >= 0xE0 ? 2
                             : lead >= 0xC0 ? 1
                                            : 0;
    unsigned value = lead & (0x7Fu >> (more + 1));
    bool whole = more > 0 && i + more < s.size();
    for (std::size_t k = 1; whole && k <= more; ++k) {
      whole = (byte(i + k) & 0xC0) == 0x80;
      value = (value << 6) | (byte(i + k) & 0x3Fu);
    }
    if (whole && value < 0x80) {
      out.push_back(static_cast<char>(value));
      i += more;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Windows and IIS: trailing dots and spaces are trimmed from each segment other than "." and
// ".."; a segment of dots and spaces alone is taken at its worst, as "..".
std::string trim_segments(std::string_view s) {
  std::string out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto slash = s.find('/', start);
    auto seg = s.substr(start, slash == std::string_view::npos ? s.npos : slash - start);
    if (seg != "." && seg != "..") {
      const bool had_dot = seg.find('.') != std::string_view::npos;
      while (!seg.empty() && (seg.back() == '.' || seg.back() == ' '))
        seg.remove_suffix(1);
      if (seg.empty() && had_dot)
        seg = "..";
    }
    out.append(seg);
    if (slash == std::string_view::npos)
      break;
    out.push_back('/');
    start = slash + 1;
  }
  return out;
}

std::string backslashes_as_slashes(std::string s) {
  for (auto& c : s)
    if (c == '\\')
      c = '/';
  return s;
}

// RFC 3986 section 5.2.4, on segments; the query (from '?') and fragment are cut off first.
std::string remove_dot_segments(std::string_view s) {
  s = s.substr(0, s.find_first_of("?#"));
  std::vector<std::string_view> kept;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto slash = s.find('/', start);
    const auto seg = s.substr(start, slash == std::string_view::npos ? s.npos : slash - start);
    if (seg == "..") {
      if (!kept.empty())
        kept.pop_back();
    } else if (seg != "." && !seg.empty()) {
      kept.push_back(seg);
    }
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  std::string out;
  for (auto seg : kept)
    out.append("/").append(seg);
  return out.empty() ? "/" : out;
}

const route_table& table() {
  static const route_table t{{
                                 {"/public", {}, true, {}},
                                 {"/alerts", {"GET", "HEAD"}, false, {}},
                                 {"/alerts", {}, false, {}},
                                 {"/api/v1/open", {}, true, {}},
                             },
                             route{"/", {}, false, {}}};
  return t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto target = tokengate::fuzz::as_text(data, size);
  normalized_target n;
  const auto normal = normalize_target(target, n);
  if (!normal) {
    check(!describe(normal.error()).empty(), "every refusal has a message");
    return 0;
  }
  check(n.path.starts_with('/'), "a normalised path starts with '/'");
  check(n.path.find("//") == std::string::npos, "no empty segments");

  normalized_target again;
  check(normalize_target(n.path, again).has_value(), "a normalised path is valid");
  check(again.path == n.path, "normalisation is idempotent");

  const auto* r = table().match("GET", n.path);
  check(r != nullptr, "the default route catches the rest");
  if (!r->open)
    return 0;
  const std::string views[] = {
      remove_dot_segments(decode_all(n.path)),
      remove_dot_segments(decode_all(decode_all(n.path))),
      remove_dot_segments(decode_all(cut_parameters(n.path))),
      remove_dot_segments(cut_parameters(decode_all(n.path))),
      remove_dot_segments(backslashes_as_slashes(decode_all(n.path))),
      remove_dot_segments(overlong_as_ascii(decode_all(n.path))),
      remove_dot_segments(trim_segments(decode_all(n.path))),
      remove_dot_segments(trim_segments(cut_parameters(decode_all(n.path)))),
  };
  for (const auto& backend_path : views)
    check(under_prefix(backend_path, r->prefix),
          "an open route's path stays under its prefix for every backend");
  return 0;
}
