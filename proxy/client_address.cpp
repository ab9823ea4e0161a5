#include "proxy/client_address.hpp"

#include <algorithm>

namespace tokengate::proxy {
namespace {

bool is_trusted(const tokenapi::ip_address& a, std::span<const tokenapi::cidr_block> trusted) {
  return std::any_of(trusted.begin(), trusted.end(),
                     [&](const tokenapi::cidr_block& b) { return b.contains(a); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

tokenapi::ip_address client_address(const tokenapi::ip_address& peer, const http1::head& request,
                                    std::span<const tokenapi::cidr_block> trusted) {
  if (trusted.empty() || !is_trusted(peer, trusted))
    return peer;
  auto current = peer;
  // Several X-Forwarded-For fields form one list, in order: walk them from the last.
  for (auto f = request.fields.rbegin(); f != request.fields.rend(); ++f) {
    if (!http1::iequals(f->name, "x-forwarded-for"))
      continue;
    // The fields are one list, as they go upstream ("a, , b" for "a", "" and "b"): a field with
    // no value is an empty entry, and an empty entry is not an address, wherever it stands.
    for (auto list = f->value;;) {
      const auto comma = list.rfind(',');
      const auto item = trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
      auto address = tokenapi::ip_address::parse(item);
      if (!address)
        return current;
      current = *address;
      if (!is_trusted(current, trusted) || comma == std::string_view::npos)
        break;
      list = list.substr(0, comma);
    }
    if (!is_trusted(current, trusted))
      return current;
  }
  return current;
}

} // namespace tokengate::proxy
