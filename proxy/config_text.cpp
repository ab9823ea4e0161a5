// The config loader's texts: its one-line messages, numbers, endpoints and `tokengate --help`.
#include "proxy/config.hpp"
#include "proxy/config_parse.hpp"

#include "tokenapi/ip.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tokengate::proxy {
namespace {

std::string one_line(const std::string& message) {
  std::string out;
  for (char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
      continue;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.append("\\x");
    out.push_back(hex[u >> 4]);
    out.push_back(hex[u & 0xf]);
  }
  return out;
}

} // namespace

config_error::config_error(const std::string& message) : std::runtime_error(one_line(message)) {}

std::string endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<endpoint> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  auto host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']'))
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos)
    return std::nullopt;
  if (host == "localhost")
    host = "127.0.0.1";
  if (!tokenapi::ip_address::parse(host))
    return std::nullopt;
  auto port = config_parse::parse_integer(text.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535)
    return std::nullopt;
  return endpoint{std::string(host), static_cast<std::uint16_t>(*port)};
}

file_text read_config_text(const std::string& path) {
  return read_regular_file(path, max_config_file_bytes);
}

std::string_view usage() {
  return R"(tokengate: an auth sidecar in front of one HTTP backend

Usage:
  tokengate serve [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT]
                  [--upstream URL] [--data-dir DIR] [--bootstrap-token-file FILE]
                  [--audit-log-file FILE] [--threads N] [--log-level debug|info|warn|error]
                  [--database-url URL] [--database-password-file FILE]
                  [--max-staleness-ms N] [--expiry-warning SECONDS]
                  [--tls-cert-file FILE --tls-key-file FILE] [--tls-client-ca-file FILE]
                  [--tls-min-version 1.2|1.3] [--tls-ciphers LIST]
                  [--admin-tls-...: the same for the admin listener]
                  [--upstream-tls-ca-file FILE]
                  [--upstream-tls-cert-file FILE --upstream-tls-key-file FILE]
  tokengate migrate --data-dir DIR --database-url URL [--database-password-file FILE]
                        copy a standalone store's tokens into the fleet's database
  tokengate keygen      print a new API key value (for a bootstrap token file)
  tokengate --help
  tokengate --version

Every setting also comes from the JSON config file and from TOKENGATE_<NAME>
(e.g. TOKENGATE_UPSTREAM); precedence: flag > environment > file > default.
See README.md for the keys, the routes table and the limits.
)";
}

} // namespace tokengate::proxy

namespace tokengate::proxy::config_parse {
namespace {

// The port after "HOST:" in an upstream URL: 1 to 65535.
std::uint16_t upstream_port(std::string_view text, const sourced& v) {
  auto port = parse_integer(text);
  if (!port || *port < 1 || *port > 65535)
    fail("upstream", v.source, "has an invalid port");
  return static_cast<std::uint16_t>(*port);
}

bool is_host_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
  });
}

} // namespace

void fail(std::string_view name, const std::string& source, std::string_view what) {
  throw config_error("configuration error: " + std::string(name) + " " + std::string(what) +
                     " (from " + source + ")");
}

std::string quoted(std::string_view key) { return json::serialize(json::string(key)); }

std::string env_name(std::string_view key) {
  std::string name = "TOKENGATE_";
  for (char c : key)
    name.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
  return name;
}

std::optional<std::int64_t> parse_integer(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

std::string as_text(const sourced& v, std::string_view name) {
  if (!v.value.is_string())
    fail(name, v.source, "must be a string");
  return std::string(v.value.get_string());
}

std::int64_t as_integer(const json::value& v, std::string_view name, const std::string& source,
                        std::int64_t min, std::int64_t max) {
  std::int64_t n = 0;
  if (v.is_int64())
    n = v.get_int64();
  else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max))
    n = static_cast<std::int64_t>(v.get_uint64());
  else
    n = min - 1;
  if (n < min || n > max)
    fail(name, source,
         "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

endpoint as_listen(const sourced& v, std::string_view name) {
  auto e = parse_listen_address(as_text(v, name));
  if (!e)
    fail(name, v.source, "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8080 or [::1]:8080");
  return *e;
}

endpoint as_upstream(const sourced& v) {
  const auto owned = as_text(v, "upstream");
  std::string_view text = owned;
  const auto bad = [&](std::string_view why) { fail("upstream", v.source, why); };
  const bool https = text.starts_with("https://");
  if (!https && !text.starts_with("http://"))
    bad("must be a URL such as http://127.0.0.1:8081 or https://app.internal");
  text.remove_prefix(https ? 8 : 7);
  if (text.ends_with('/'))
    text.remove_suffix(1);
  if (text.find_first_of("/?#@") != std::string_view::npos)
    bad("must not have a path, query or user info: only http://HOST[:PORT]");
  endpoint e;
  e.port = https ? 443 : 80;
  std::string_view host = text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos)
      bad("has an unterminated IPv6 address");
    host = text.substr(1, close - 1);
    text.remove_prefix(close + 1);
    if (!text.empty() && !text.starts_with(':'))
      bad("must be http://HOST[:PORT]");
    if (text.size() > 1)
      e.port = upstream_port(text.substr(1), v);
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    e.port = upstream_port(text.substr(colon + 1), v);
  }
  if (!is_host_name(host))
    bad("has an invalid host");
  e.host = host;
  return e;
}

} // namespace tokengate::proxy::config_parse
