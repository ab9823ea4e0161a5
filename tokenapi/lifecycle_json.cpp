#include "tokenapi/lifecycle_json.hpp"

#include "tokenapi/json_parse.hpp"

#include <boost/json.hpp>

#include <limits>

namespace tokengate::tokenapi {
namespace json = boost::json;
namespace {

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
      return bad_request("unknown field " + quoted_input(key) +
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

std::string hex_of(const store::digest& d) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

std::optional<store::digest> digest_of_hex(std::string_view text) {
  store::digest d{};
  if (text.size() != d.size() * 2)
    return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return d;
}

api_result<std::int64_t> parse_rotate_body(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return api_result<std::int64_t>(boost::system::in_place_value, 0);
  auto parsed = parse_json(body, "request body");
  if (!parsed)
    return parsed.error();
  if (!parsed->is_object())
    return bad_request("request body must be a JSON object");
  std::int64_t overlap = 0;
  for (const auto& [key, v] : parsed->get_object()) {
    if (key != "previousValueValidFor")
      return bad_request("unknown field " + quoted_input(key) + "; expected previousValueValidFor");
    auto n = parse_bounded(v, "previousValueValidFor", 0, max_overlap_seconds);
    if (!n)
      return n.error();
    overlap = *n;
  }
  return api_result<std::int64_t>(boost::system::in_place_value, overlap);
}

} // namespace tokengate::tokenapi
