// The store payload of a token: every field but id, digest and last use, as JSON.
#include "tokenapi/token_payload.hpp"

#include "tokenapi/token_fields.hpp"

#include <boost/json.hpp>

namespace tokengate::tokenapi {
namespace json = boost::json;
using namespace detail;
namespace {

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

// Payload fields: small helpers that fail soft, so a bad record is reported, never thrown.
const json::value* field(const json::object& o, std::string_view k) { return o.if_contains(k); }

std::optional<std::int64_t> int_field(const json::object& o, std::string_view k) {
  auto v = field(o, k);
  if (!v || !v->is_int64())
    return std::nullopt;
  return v->get_int64();
}

std::optional<timestamp> time_field(const json::object& o, std::string_view k) {
  auto v = int_field(o, k);
  if (!v)
    return std::nullopt;
  return timestamp(std::chrono::seconds(*v));
}

std::optional<actor> actor_field(const json::object& o, std::string_view k) {
  auto v = field(o, k);
  if (!v || !v->is_object())
    return std::nullopt;
  auto id = v->get_object().if_contains("id");
  auto type = v->get_object().if_contains("type");
  if (!id || !id->is_string() || !type || !type->is_string())
    return std::nullopt;
  if (type->get_string() == "api-token")
    return actor::token(std::string(id->get_string()));
  if (type->get_string() == "system")
    return actor::system();
  return std::nullopt;
}

} // namespace

std::string encode_payload(const token& t) {
  json::object o;
  o["v"] = 1;
  o["name"] = t.name;
  o["permissions"] = permission_names(t.permissions);
  o["cidrs"] = cidr_texts(t.allowed_cidr_blocks);
  o["created_at"] = t.created_at.time_since_epoch().count();
  o["created_by"] = actor_json(t.created_by);
  o["updated_at"] = t.updated_at.time_since_epoch().count();
  o["updated_by"] = actor_json(t.updated_by);
  if (t.expires_at)
    o["expires_at"] = t.expires_at->time_since_epoch().count();
  if (t.rotated_at)
    o["rotated_at"] = t.rotated_at->time_since_epoch().count();
  if (t.previous_digest && t.previous_expires_at) {
    o["previous_digest"] = hex_of(*t.previous_digest);
    o["previous_expires_at"] = t.previous_expires_at->time_since_epoch().count();
  }
  if (t.rate_limit)
    o["rate_limit"] = rate_limit_json(*t.rate_limit);
  return json::serialize(o);
}

std::optional<token> decode_record(const store::token_record& r) {
  // The document lives only for this call: the parser's scratch space and the document go to
  // buffers on the stack (the heap only for an unusually large record), which halves the cost
  // of loading a large store.
  unsigned char scratch[1024];
  unsigned char buffer[4096];
  json::monotonic_resource arena(buffer, sizeof buffer);
  json::parser parser(&arena, {}, scratch, sizeof scratch);
  boost::system::error_code ec;
  parser.write(r.payload.data(), r.payload.size(), ec);
  if (ec)
    return std::nullopt;
  json::value doc = parser.release();
  if (!doc.is_object())
    return std::nullopt;
  const auto& o = doc.get_object();

  if (!sendable_id(r.id))
    return std::nullopt;
  token t;
  t.id = r.id;
  t.value_digest = r.value_digest;
  if (r.last_used)
    t.last_used_at = timestamp(std::chrono::seconds(*r.last_used));
  auto name = field(o, "name");
  auto permissions = field(o, "permissions");
  auto cidrs = field(o, "cidrs");
  auto created_at = time_field(o, "created_at");
  auto updated_at = time_field(o, "updated_at");
  auto created_by = actor_field(o, "created_by");
  auto updated_by = actor_field(o, "updated_by");
  if (!name || !name->is_string() || !permissions || !cidrs || !created_at || !updated_at ||
      !created_by || !updated_by)
    return std::nullopt;
  t.name = name->get_string();
  if (!sendable_name(t.name))
    return std::nullopt;
  auto set = parse_permissions(*permissions);
  auto blocks = parse_cidrs(*cidrs);
  if (!set || !blocks)
    return std::nullopt;
  t.permissions = *set;
  t.allowed_cidr_blocks = std::move(*blocks);
  t.created_at = *created_at;
  t.updated_at = *updated_at;
  t.created_by = std::move(*created_by);
  t.updated_by = std::move(*updated_by);
  t.expires_at = time_field(o, "expires_at");
  t.rotated_at = time_field(o, "rotated_at");
  auto previous = field(o, "previous_digest");
  auto previous_expires_at = time_field(o, "previous_expires_at");
  if (previous && previous->is_string() && previous_expires_at) {
    t.previous_digest = digest_of_hex(previous->get_string());
    if (!t.previous_digest)
      return std::nullopt;
    t.previous_expires_at = previous_expires_at;
  }
  if (auto limit = field(o, "rate_limit")) {
    auto parsed = parse_rate_limit(*limit);
    if (!parsed || !*parsed)
      return std::nullopt;
    t.rate_limit = *parsed;
  }
  return t;
}

} // namespace tokengate::tokenapi
