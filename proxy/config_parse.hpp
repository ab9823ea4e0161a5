#pragma once
// The config loader's own parts, shared by proxy/config.cpp (precedence and the settings table),
// proxy/config_file.cpp (the JSON documents: file, routes, limits, trusted proxies) and
// proxy/config_text.cpp (messages, numbers, endpoints, usage). Not for other users.

#include "proxy/config.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::proxy::config_parse {
namespace json = boost::json;

/// A value and where it came from ("config file F", "TOKENGATE_X", "--flag"), for messages.
struct sourced {
  json::value value;
  std::string source;
};

/// Throws the config_error "configuration error: NAME WHAT (from SOURCE)".
[[noreturn]] void fail(std::string_view name, const std::string& source, std::string_view what);

/// A key as JSON text: quoted, with control characters escaped, so a message stays one line.
[[nodiscard]] std::string quoted(std::string_view key);

/// "TOKENGATE_" and the key in upper case: the variable of a setting or a limit.
[[nodiscard]] std::string env_name(std::string_view key);

/// A whole decimal integer (optional '-'), or nullopt.
[[nodiscard]] std::optional<std::int64_t> parse_integer(std::string_view s);

/// The value as text; fails unless it is a JSON string.
[[nodiscard]] std::string as_text(const sourced& v, std::string_view name);

/// The value as an integer in [min, max]; fails with the range otherwise.
[[nodiscard]] std::int64_t as_integer(const json::value& v, std::string_view name,
                                      const std::string& source, std::int64_t min,
                                      std::int64_t max);

/// A listen address (see parse_listen_address); fails with an example otherwise.
[[nodiscard]] endpoint as_listen(const sourced& v, std::string_view name);

/// The upstream: http://HOST[:PORT] with an IP or a name, nothing after but one '/'.
[[nodiscard]] endpoint as_upstream(const sourced& v);

/// Parses `text` as one JSON value; throws config_error with the line of a syntax error, and
/// on a key repeated in one object.
[[nodiscard]] json::value parse_json_text(std::string_view text, const std::string& source);

/// Reads and parses the config file at `path`; its value is a JSON object. Throws config_error.
[[nodiscard]] sourced read_config_file(const std::string& path, const file_reader& read);

/// The "trusted_proxies" setting: an array of CIDR blocks, appended to `c`.
void apply_trusted_proxies(config& c, std::string_view name, const sourced& v);

/// The "routes" setting: an array of route objects, appended to `c`.
void apply_routes(config& c, std::string_view name, const sourced& v);

/// The "default_route" setting: a route object without a prefix, or null for none.
void apply_default_route(config& c, std::string_view name, const sourced& v);

/// Each limit's value and its source, merged key by key: the objects of `objects` in order
/// (the file's "limits", then TOKENGATE_LIMITS), then TOKENGATE_<LIMIT> from `env`.
using limit_layers = std::map<std::string_view, sourced>;
[[nodiscard]] limit_layers collect_limits(const std::vector<sourced>& objects,
                                          const env_lookup& env);

/// Checks each collected limit against its range and sets it in `l`.
void apply_limits(limits& l, const limit_layers& layers);

} // namespace tokengate::proxy::config_parse
