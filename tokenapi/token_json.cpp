#include "tokenapi/token_json.hpp"

#include "tokenapi/json_parse.hpp"
#include "tokenapi/token_fields.hpp"
#include "tokenapi/token_value.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <limits>

namespace tokengate::tokenapi {
namespace json = boost::json;
using namespace detail;
namespace {

constexpr std::size_t max_echo = 64; // longest user input quoted back in a message

std::string quoted(std::string_view s) {
  std::string out = "\"";
  if (s.size() <= max_echo) {
    out.append(s);
  } else {
    // Cut at a character boundary: half a UTF-8 sequence would make the answer invalid JSON.
    auto cut = max_echo;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80)
      --cut;
    out.append(s.substr(0, cut));
    out.append("...");
  }
  out.push_back('"');
  return out;
}

std::string_view kind_name(actor::kind k) {
  return k == actor::kind::api_token ? "api-token" : "system";
}

// Why an IPv4-mapped block was refused, when that is the reason.
std::string cidr_hint(std::string_view text) {
  if (text.find("::ffff:") == std::string_view::npos &&
      text.find("::FFFF:") == std::string_view::npos)
    return {};
  return " (an IPv4-mapped block needs a prefix of 96 to 128: ::ffff:10.0.0.0/104 is "
         "10.0.0.0/8)";
}

api_result<std::string> parse_name(const json::value& v) {
  if (!v.is_string())
    return bad_request("\"name\" must be a string");
  std::string_view name = v.get_string();
  if (name.empty())
    return bad_request("\"name\" must not be empty");
  if (name.size() > max_name_bytes)
    return bad_request("\"name\" is longer than 256 bytes");
  if (has_control_character(name))
    return bad_request("\"name\" must not contain control characters");
  // A name goes upstream in X-Token-Name, into the audit trail and the store: a key pasted
  // into it would be kept in the clear everywhere.
  if (holds_value(name) || holds_bare_value(name))
    return bad_request("\"name\" must not hold an API key value");
  return std::string(name);
}

api_result<std::optional<timestamp>> parse_expiry(const json::value& v, timestamp now) {
  if (v.is_null())
    return std::optional<timestamp>{};
  const char* shape = "\"expiresAt\" must be an RFC 3339 date-time such as 2030-01-01T00:00:00Z";
  if (!v.is_string())
    return bad_request(shape);
  rfc3339_refusal why{};
  auto t = parse_rfc3339(v.get_string(), &why);
  if (!t && why == rfc3339_refusal::leap_second)
    return bad_request("\"expiresAt\" is a leap second (:60), which tokengate does not take: "
                       "use :59");
  if (!t && why == rfc3339_refusal::out_of_range)
    return bad_request("\"expiresAt\" must fall in the years 0000 to 9999 in UTC");
  if (!t)
    return bad_request(shape);
  // Whole seconds: a fraction is dropped, so 0.6 s from now is now.
  if (*t <= now)
    return bad_request("\"expiresAt\" must lie in the future (in whole seconds)");
  return std::optional<timestamp>{*t};
}

// A whole number from `lowest` to `highest`; `what` names the field in the message.
api_result<std::int64_t> parse_bounded(const json::value& v, std::string_view what,
                                       std::int64_t lowest, std::int64_t highest) {
  const auto range = "\"" + std::string(what) + "\" must be an integer from " +
                     std::to_string(lowest) + " to " + std::to_string(highest);
  std::int64_t n = 0;
  if (v.is_int64())
    n = v.get_int64();
  else if (v.is_uint64())
    n = std::numeric_limits<std::int64_t>::max(); // above every range here
  else
    return bad_request(range);
  if (n < lowest || n > highest)
    return bad_request(range);
  return api_result<std::int64_t>(boost::system::in_place_value, n);
}

} // namespace

namespace detail {

json::object actor_json(const actor& a) { return {{"id", a.id}, {"type", kind_name(a.type)}}; }

json::array permission_names(permission_set set) {
  json::array names;
  set.for_each([&](permission p) { names.emplace_back(name_of(p)); });
  return names;
}

json::array cidr_texts(const std::vector<cidr_block>& blocks) {
  json::array out;
  for (const auto& b : blocks)
    out.emplace_back(b.to_string());
  return out;
}

api_result<permission_set> parse_permissions(const json::value& v) {
  if (!v.is_array())
    return bad_request("\"permissions\" must be an array of strings");
  permission_set set;
  for (const auto& item : v.get_array()) {
    if (!item.is_string())
      return bad_request("\"permissions\" must be an array of strings");
    auto p = parse_permission(item.get_string());
    if (!p)
      return bad_request("unknown permission " + quoted(item.get_string()));
    set.insert(*p);
  }
  return set;
}

api_result<std::vector<cidr_block>> parse_cidrs(const json::value& v) {
  std::vector<cidr_block> blocks;
  if (!v.is_array())
    return bad_request("\"allowedCIDRBlocks\" must be an array of strings");
  if (v.get_array().size() > max_cidr_blocks)
    return bad_request("\"allowedCIDRBlocks\" holds more than 256 blocks");
  for (const auto& item : v.get_array()) {
    if (!item.is_string())
      return bad_request("\"allowedCIDRBlocks\" must be an array of strings");
    auto block = cidr_block::parse(item.get_string());
    if (!block)
      return bad_request("invalid CIDR block " + quoted(item.get_string()) +
                         " in \"allowedCIDRBlocks\"" + cidr_hint(item.get_string()));
    if (std::find(blocks.begin(), blocks.end(), *block) == blocks.end())
      blocks.push_back(*block);
  }
  return blocks;
}

api_result<std::optional<rate_limit>> parse_rate_limit(const json::value& v) {
  if (v.is_null())
    return std::optional<rate_limit>{};
  const char* shape =
      "\"rateLimit\" must be an object {\"requests\": N, \"perSeconds\": S} or null";
  if (!v.is_object())
    return bad_request(shape);
  rate_limit limit;
  for (const auto& [key, item] : v.get_object()) {
    if (key == "requests") {
      auto n = parse_bounded(item, "rateLimit.requests", 1, rate_limit::max_requests);
      if (!n)
        return n.error();
      limit.requests = static_cast<std::uint32_t>(*n);
    } else if (key == "perSeconds") {
      auto n = parse_bounded(item, "rateLimit.perSeconds", 1, rate_limit::max_seconds);
      if (!n)
        return n.error();
      limit.per_seconds = static_cast<std::uint32_t>(*n);
    } else {
      return bad_request("unknown field " + quoted(key) +
                         " in \"rateLimit\"; expected requests, perSeconds");
    }
  }
  if (limit.requests == 0)
    return bad_request("missing required field \"rateLimit.requests\"");
  if (limit.per_seconds == 0)
    return bad_request("missing required field \"rateLimit.perSeconds\"");
  return std::optional<rate_limit>{limit};
}

json::object rate_limit_json(const rate_limit& l) {
  return {{"requests", l.requests}, {"perSeconds", l.per_seconds}};
}

} // namespace detail

void throw_exception_from_error(const api_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

json::object to_api_json(const token& t, std::string_view value) {
  json::object o;
  o["allowedCIDRBlocks"] = cidr_texts(t.allowed_cidr_blocks);
  o["createdAt"] = format_rfc3339(t.created_at);
  o["createdBy"] = actor_json(t.created_by);
  if (t.expires_at)
    o["expiresAt"] = format_rfc3339(*t.expires_at);
  o["id"] = t.id;
  if (t.last_used_at)
    o["lastUsedAt"] = format_rfc3339(*t.last_used_at);
  o["name"] = t.name;
  o["permissions"] = permission_names(t.permissions);
  if (t.previous_expires_at)
    o["previousValueExpiresAt"] = format_rfc3339(*t.previous_expires_at);
  if (t.previous_last_used_at)
    o["previousValueLastUsedAt"] = format_rfc3339(*t.previous_last_used_at);
  if (t.rate_limit)
    o["rateLimit"] = rate_limit_json(*t.rate_limit);
  if (t.rotated_at)
    o["rotatedAt"] = format_rfc3339(*t.rotated_at);
  o["updatedAt"] = format_rfc3339(t.updated_at);
  o["updatedBy"] = actor_json(t.updated_by);
  if (!value.empty())
    o["value"] = value;
  return o;
}

api_result<token_spec> parse_token_spec(std::string_view body, timestamp now) {
  auto parsed = parse_json(body, "request body");
  if (!parsed)
    return parsed.error();
  const json::value& doc = *parsed;
  if (!doc.is_object())
    return bad_request("request body must be a JSON object");

  token_spec spec;
  bool has_name = false;
  bool has_permissions = false;
  for (const auto& [key, v] : doc.get_object()) {
    if (key == "name") {
      auto name = parse_name(v);
      if (!name)
        return name.error();
      spec.name = std::move(*name);
      has_name = true;
    } else if (key == "permissions") {
      auto set = parse_permissions(v);
      if (!set)
        return set.error();
      spec.permissions = *set;
      has_permissions = true;
    } else if (key == "allowedCIDRBlocks") {
      auto blocks = parse_cidrs(v);
      if (!blocks)
        return blocks.error();
      spec.allowed_cidr_blocks = std::move(*blocks);
    } else if (key == "expiresAt") {
      auto expiry = parse_expiry(v, now);
      if (!expiry)
        return expiry.error();
      spec.expires_at = *expiry;
    } else if (key == "rateLimit") {
      auto limit = parse_rate_limit(v);
      if (!limit)
        return limit.error();
      spec.rate_limit = *limit;
    } else {
      return bad_request("unknown field " + quoted(key) +
                         "; expected name, permissions, allowedCIDRBlocks, expiresAt, rateLimit");
    }
  }
  if (!has_name)
    return bad_request("missing required field \"name\"");
  if (!has_permissions)
    return bad_request("missing required field \"permissions\"");
  return spec;
}

api_result<std::int64_t> parse_rotate_body(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return api_result<std::int64_t>(boost::system::in_place_value, 0);
  auto parsed = parse_json(body, "request body");
  if (!parsed)
    return parsed.error();
  if (parsed->is_null()) // as some Panther clients send "no body"
    return api_result<std::int64_t>(boost::system::in_place_value, 0);
  if (!parsed->is_object())
    return bad_request("request body must be a JSON object");
  std::int64_t overlap = 0;
  for (const auto& [key, v] : parsed->get_object()) {
    if (key != "previousValueValidFor")
      return bad_request("unknown field " + quoted(key) + "; expected previousValueValidFor");
    auto n = parse_bounded(v, "previousValueValidFor", 0, max_overlap_seconds);
    if (!n)
      return n.error();
    overlap = *n;
  }
  return api_result<std::int64_t>(boost::system::in_place_value, overlap);
}

std::string error_body(std::string_view message) {
  // A message may quote what the client sent (a field name, a permission): a key pasted there
  // is not sent back, where a log or a screenshot of the answer could keep it.
  if (holds_value(message))
    return json::serialize(json::object{{"message", redact_values(message)}});
  return json::serialize(json::object{{"message", message}});
}

namespace {
bool c0_or_del(unsigned char b) noexcept { return b < 0x20 || b == 0x7f; }
} // namespace

// C0, DEL and C1 (U+0080 to U+009F, in UTF-8 0xC2 0x80 to 0xC2 0x9F): a name is sent upstream
// in a header, and C1 controls are read as line ends or escapes by some terminals and parsers.
bool has_control_character(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c0_or_del(c))
      return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return true;
  }
  return false;
}

bool sendable_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

bool sendable_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_bytes &&
         std::none_of(name.begin(), name.end(),
                      [](char c) { return c0_or_del(static_cast<unsigned char>(c)); });
}

} // namespace tokengate::tokenapi
