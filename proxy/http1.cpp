#include "proxy/http1.hpp"

#include "tokenapi/ip.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tokengate::proxy::http1 {
namespace {

constexpr std::array<bool, 256> make_tchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto tchar = make_tchar();

bool is_tchar(char c) noexcept { return tchar[static_cast<unsigned char>(c)]; }

// field-vchar, SP, HTAB and obs-text: everything but the other controls.
bool is_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Cuts the next CRLF-terminated line off `rest` (scan_head guaranteed every LF has its CR).
std::string_view next_line(std::string_view& rest) noexcept {
  const auto end = rest.find("\r\n");
  auto line = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 2);
  return line;
}

using head_result = boost::system::result<void, head_error>;
using framing_result = boost::system::result<framing, framing_error>;

boost::system::result<unsigned, head_error> parse_version(std::string_view v) noexcept {
  if (v == "HTTP/1.1")
    return 11u;
  if (v == "HTTP/1.0")
    return 10u;
  if (v.size() == 8 && v.starts_with("HTTP/") && v[6] == '.')
    return head_error::bad_version;
  return head_error::bad_start_line;
}

head_result parse_fields(std::string_view rest, head& out) {
  for (;;) {
    auto line = next_line(rest);
    if (line.empty())
      return {};
    if (is_ows(line.front()))
      return head_error::obsolete_line_folding;
    std::size_t i = 0;
    while (i < line.size() && is_tchar(line[i]))
      ++i;
    if (i == 0)
      return head_error::bad_field;
    if (i < line.size() && is_ows(line[i]))
      return head_error::space_before_colon;
    if (i == line.size() || line[i] != ':')
      return head_error::bad_field;
    auto value = line.substr(i + 1);
    for (char c : value)
      if (!is_value_char(c))
        return head_error::bad_field;
    if (out.fields.size() == max_fields)
      return head_error::too_many_fields;
    out.fields.push_back({line.substr(0, i), trim_ows(value)});
  }
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) noexcept {
  if (s.empty() || s.size() > 18)
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Calls f(token) for each element of the comma-separated lists in fields named `name`.
template <class F> void for_each_list_item(const head& h, std::string_view name, F&& f) {
  for (const auto& fl : h.fields) {
    if (!iequals(fl.name, name))
      continue;
    auto list = fl.value;
    while (!list.empty()) {
      const auto comma = list.find(',');
      auto item = trim_ows(list.substr(0, comma));
      list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
      if (!item.empty())
        f(item);
    }
  }
}

struct framing_fields {
  unsigned lengths = 0;
  unsigned encodings = 0;
  std::string_view length;
  std::string_view encoding;
};

framing_fields framing_fields_of(const head& h) {
  framing_fields f;
  for (const auto& fl : h.fields) {
    if (iequals(fl.name, "content-length")) {
      ++f.lengths;
      f.length = fl.value;
    } else if (iequals(fl.name, "transfer-encoding")) {
      ++f.encodings;
      f.encoding = fl.value;
    }
  }
  return f;
}

framing_result length_framing(std::string_view text) {
  auto n = parse_decimal(text);
  if (!n)
    return text.find(',') != std::string_view::npos ? framing_error::duplicate_content_length
                                                    : framing_error::bad_content_length;
  return n == 0 ? framing{} : framing{framing::kind::length, *n};
}

// The rules requests and responses share: at most one of each framing field, never both, and
// no transfer coding but chunked (another one could not be relayed without its hop-by-hop
// Transfer-Encoding).
framing_result body_framing(const framing_fields& f) {
  if (f.encodings > 1)
    return framing_error::duplicate_transfer_encoding;
  if (f.lengths > 1)
    return framing_error::duplicate_content_length;
  if (f.encodings == 1) {
    if (f.lengths == 1)
      return framing_error::transfer_encoding_with_length;
    if (!iequals(f.encoding, "chunked"))
      return framing_error::bad_transfer_encoding;
    return framing{framing::kind::chunked, 0};
  }
  if (f.lengths == 1)
    return length_framing(f.length);
  return framing{};
}

// Methods are case-sensitive (RFC 9110 section 9.1), but some backends upper-case them (Flask,
// Werkzeug) and would run "delete" as the DELETE the route table never saw. Every registered
// method is upper-case letters and '-' (as nginx accepts).
bool valid_method(std::string_view method) noexcept {
  return std::all_of(method.begin(), method.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || c == '-'; });
}

bool is_host_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool valid_port(std::string_view port) noexcept {
  if (port.empty() || port.size() > 5)
    return false;
  unsigned n = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n <= 65535;
}

bool valid_ipv6_literal(std::string_view inside) noexcept {
  const auto a = tokenapi::ip_address::parse(inside);
  return a && inside.find(':') != std::string_view::npos;
}

// Letters, digits, '-', '_' and '~' in labels between dots, none empty but a last one (a
// fully qualified "a.example.").
bool valid_host_name(std::string_view name) noexcept {
  if (name.empty() || name.front() == '.' || name.find("..") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(), is_host_name_char);
}

} // namespace

bool valid_host(std::string_view host) noexcept {
  if (host.empty())
    return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos || !valid_ipv6_literal(host.substr(1, close - 1)))
      return false;
    name = {};
    auto rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return false;
      port = rest.substr(1);
      if (!valid_port(port))
        return false;
    }
    return true;
  }
  if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    if (!valid_port(port))
      return false;
  }
  return valid_host_name(name);
}

bool backend_equals(std::string_view name, std::string_view canonical) noexcept {
  if (name.size() != canonical.size())
    return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = lower(name[i]);
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c != canonical[i] && !(canonical[i] == '-' && !alnum))
      return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i]))
      return false;
  return true;
}

std::optional<std::string_view> head::find(std::string_view name) const noexcept {
  for (const auto& f : fields)
    if (iequals(f.name, name))
      return f.value;
  return std::nullopt;
}

boost::system::result<std::size_t, head_error> scan_head(std::string_view buffer,
                                                         std::size_t& scanned) noexcept {
  std::size_t pos = scanned;
  for (;;) {
    const void* hit = std::memchr(buffer.data() + pos, '\n', buffer.size() - pos);
    if (hit == nullptr)
      return std::size_t{0};
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(hit) - buffer.data());
    if (lf == 0 || buffer[lf - 1] != '\r')
      return head_error::bare_lf;
    if (lf == pos + 1 && pos != 0) // an empty line after at least one other ends the head
      return lf + 1;
    pos = lf + 1;
    scanned = pos;
  }
}

head_result parse_request(std::string_view bytes, head& out) {
  out.fields.clear();
  out.size = bytes.size();
  auto line = next_line(bytes);
  const auto sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos)
    return head_error::bad_start_line;
  out.method = line.substr(0, sp1);
  for (char c : out.method)
    if (!is_tchar(c))
      return head_error::bad_start_line;
  if (!valid_method(out.method))
    return head_error::bad_method;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1)
    return head_error::bad_start_line;
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char c : out.target)
    if (c <= 0x20 || c >= 0x7f)
      return head_error::bad_start_line;
  const auto version = parse_version(line.substr(sp2 + 1));
  if (!version)
    return version.error();
  out.version = *version;
  return parse_fields(bytes, out);
}

head_result parse_response(std::string_view bytes, head& out) {
  out.fields.clear();
  out.size = bytes.size();
  auto line = next_line(bytes);
  if (line.size() < 12 || line[8] != ' ')
    return head_error::bad_start_line;
  const auto version = parse_version(line.substr(0, 8));
  if (!version)
    return version.error();
  out.version = *version;
  auto code = line.substr(9, 3);
  // RFC 9110 section 15: every status is from 100 to 599.
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      code[0] == '0' || code[0] > '5')
    return head_error::bad_start_line;
  out.status = static_cast<unsigned>((code[0] - '0') * 100 + (code[1] - '0') * 10 + code[2] - '0');
  if (line.size() > 12 && line[12] != ' ')
    return head_error::bad_start_line;
  for (char c : line.substr(12))
    if (!is_value_char(c))
      return head_error::bad_start_line;
  return parse_fields(bytes, out);
}

framing_result request_framing(const head& h) {
  const auto f = framing_fields_of(h);
  auto body = body_framing(f);
  if (body && f.encodings == 1 && h.version == 10)
    return framing_error::transfer_encoding_on_http10;
  return body;
}

framing_result response_framing(const head& h, std::string_view method) {
  if (method == "HEAD" || h.status < 200 || h.status == 204 || h.status == 304)
    return framing{};
  const auto f = framing_fields_of(h);
  if (f.encodings == 0 && f.lengths == 0)
    return framing{framing::kind::until_close, 0};
  // RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
  auto body = body_framing(f);
  if (body && f.encodings == 1 && h.version == 10)
    return framing_error::transfer_encoding_on_http10;
  return body;
}

void throw_exception_from_error(head_error e, const boost::source_location&) {
  throw std::logic_error("unchecked head error " + std::to_string(static_cast<int>(e)));
}

void throw_exception_from_error(framing_error e, const boost::source_location&) {
  throw std::logic_error("unchecked framing error " + std::to_string(static_cast<int>(e)));
}

connection_options connection_of(const head& h) {
  connection_options o;
  for_each_list_item(h, "connection", [&](std::string_view item) {
    if (iequals(item, "close"))
      o.close = true;
    else if (iequals(item, "keep-alive"))
      o.keep_alive = true;
    else
      o.names_fields = true;
  });
  return o;
}

bool named_in_connection(const head& h, std::string_view name) {
  bool named = false;
  for_each_list_item(h, "connection",
                     [&](std::string_view item) { named = named || iequals(item, name); });
  return named;
}

bool no_content_announces_body(const head& response) {
  if (response.status != 204)
    return false;
  for (const auto& f : response.fields)
    if (iequals(f.name, "transfer-encoding") ||
        (iequals(f.name, "content-length") && f.value != "0"))
      return true;
  return false;
}

bool keeps_alive(const head& h) {
  const auto o = connection_of(h);
  if (o.close)
    return false;
  return h.version == 11 || o.keep_alive;
}

} // namespace tokengate::proxy::http1
