// Start-up's fast path (see plain_record.hpp). It reads the one shape tokenapi/token_payload.cpp
// writes for a token without a lifecycle, field by field in its order, and gives up on
// anything else: an unusual record costs a full decode, never a wrong token.
#include "tokenapi/plain_record.hpp"

#include "tokenapi/token.hpp"

#include <algorithm>
#include <charconv>

namespace tokengate::tokenapi {
namespace {

/// Reads a payload from the front; every read either takes what it names or fails.
class cursor {
public:
  explicit cursor(std::string_view text) : text_(text) {}

  [[nodiscard]] bool at_end() const noexcept { return text_.empty(); }

  bool literal(std::string_view l) noexcept {
    if (!text_.starts_with(l))
      return false;
    text_.remove_prefix(l.size());
    return true;
  }

  /// A string of printable ASCII without escapes (JSON would need no unescaping and no UTF-8
  /// check for it).
  std::optional<std::string_view> string() noexcept {
    if (!literal("\""))
      return std::nullopt;
    for (std::size_t i = 0; i < text_.size(); ++i) {
      const auto c = static_cast<unsigned char>(text_[i]);
      if (c == '"') {
        const auto s = text_.substr(0, i);
        text_.remove_prefix(i + 1);
        return s;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80)
        return std::nullopt;
    }
    return std::nullopt;
  }

  /// An integer as JSON spells one, of at most 18 digits (so it fits in 64 bits); the caller's
  /// next literal makes sure no fraction or exponent follows.
  std::optional<std::int64_t> integer() noexcept {
    const bool negative = literal("-");
    std::size_t digits = 0;
    while (digits < text_.size() && digits < 19 && text_[digits] >= '0' && text_[digits] <= '9')
      ++digits;
    if (digits == 0 || digits > 18 || (text_[0] == '0' && (digits > 1 || negative)))
      return std::nullopt;
    std::int64_t v = 0;
    std::from_chars(text_.data(), text_.data() + digits, v);
    text_.remove_prefix(digits);
    return negative ? -v : v;
  }

  /// `[` strings `]`, each handed to `each`, which says whether it is one we take.
  template <class Each> bool strings(Each each) {
    if (!literal("["))
      return false;
    if (literal("]"))
      return true;
    do {
      const auto s = string();
      if (!s || !each(*s))
        return false;
    } while (literal(","));
    return literal("]");
  }

  /// {"id":"...","type":"api-token"} or the same with "system".
  bool actor() noexcept {
    return literal("{\"id\":") && string() && literal(",\"type\":") &&
           (literal("\"api-token\"}") || literal("\"system\"}"));
  }

private:
  std::string_view text_;
};

bool read_permissions(cursor& in, permission_set& set) {
  return in.strings([&](std::string_view name) {
    const auto p = parse_permission(name);
    if (p)
      set.insert(*p);
    return p.has_value();
  });
}

// Appends the blocks, without duplicates, as the API's parser keeps them.
bool read_blocks(cursor& in, std::vector<cidr_block>& blocks, std::size_t first) {
  std::size_t listed = 0;
  return in.strings([&](std::string_view text) {
    const auto block = cidr_block::parse(text);
    if (!block || ++listed > max_cidr_blocks)
      return false;
    if (std::find(blocks.begin() + static_cast<std::ptrdiff_t>(first), blocks.end(), *block) ==
        blocks.end())
      blocks.push_back(*block);
    return true;
  });
}

bool read_fields(cursor& in, plain_token& t, std::vector<cidr_block>& blocks) {
  const auto first = blocks.size();
  const auto name = (in.literal("{\"v\":1,\"name\":")) ? in.string() : std::nullopt;
  if (!name || !in.literal(",\"permissions\":") || !read_permissions(in, t.permissions) ||
      !in.literal(",\"cidrs\":") || !read_blocks(in, blocks, first))
    return false;
  if (!sendable_name(*name))
    return false;
  t.name = *name;
  t.first_block = static_cast<std::uint32_t>(first);
  t.blocks = static_cast<std::uint32_t>(blocks.size() - first);
  if (!in.literal(",\"created_at\":") || !in.integer() || !in.literal(",\"created_by\":") ||
      !in.actor() || !in.literal(",\"updated_at\":") || !in.integer() ||
      !in.literal(",\"updated_by\":") || !in.actor())
    return false;
  if (in.literal(",\"expires_at\":")) {
    t.expires_at = in.integer();
    if (!t.expires_at)
      return false;
  }
  if (in.literal(",\"rotated_at\":") && !in.integer())
    return false;
  return in.literal("}") && in.at_end();
}

} // namespace

std::optional<plain_token> read_plain_record(const store::token_record& r,
                                             std::vector<cidr_block>& blocks) {
  if (!sendable_id(r.id))
    return std::nullopt;
  plain_token t;
  t.id = r.id;
  t.value_digest = r.value_digest;
  t.last_used = r.last_used;
  cursor in(r.payload);
  const auto size_before = blocks.size();
  if (!read_fields(in, t, blocks)) {
    blocks.resize(size_before);
    return std::nullopt;
  }
  return t;
}

} // namespace tokengate::tokenapi
