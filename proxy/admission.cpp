#include "proxy/admission.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

namespace tokengate::proxy {
namespace {

std::size_t count_fields(const http1::head& h, std::string_view name) {
  return static_cast<std::size_t>(std::count_if(
      h.fields.begin(), h.fields.end(), [&](auto& f) { return http1::iequals(f.name, name); }));
}

} // namespace

boost::system::result<admitted, http1::refusal> admit_request(const http1::head& h,
                                                              normalized_target& target) {
  admitted a;
  // tokengate relays requests and never tunnels: a 2xx answer to CONNECT makes the upstream
  // connection a tunnel (RFC 9112 section 6.3), which could not go back to the pool, and whose
  // framing the client would read differently from tokengate.
  if (h.method == "CONNECT")
    return http1::refusal{501, "CONNECT is not supported: tokengate relays requests, not tunnels"};
  const auto body = http1::request_framing(h);
  if (!body)
    return http1::refusal{400, http1::describe(body.error())};
  a.body = *body;
  if (const auto normal = normalize_target(h.target, target); !normal)
    return http1::refusal{400, describe(normal.error())};
  const auto hosts = count_fields(h, "host");
  if (hosts > 1)
    return http1::refusal{400, "more than one Host header"};
  if (hosts == 0 && h.version == 11)
    return http1::refusal{400, "missing Host header"};
  if (hosts == 1 && !http1::valid_host(*h.find("host")))
    return http1::refusal{400, "invalid Host header"};
  const auto keys = count_fields(h, "x-api-key");
  if (keys > 1)
    return http1::refusal{400, "more than one X-API-Key header"};
  if (keys == 1)
    a.key = h.find("x-api-key");
  if (const auto expect = h.find("expect")) {
    if (!http1::iequals(*expect, "100-continue"))
      return http1::refusal{417, "only \"Expect: 100-continue\" is supported"};
    a.want_continue = h.version == 11 && a.body.type != http1::framing::kind::none;
  }
  a.keep_alive = h.version == 11 && http1::keeps_alive(h);
  return a;
}

bool retryable(std::string_view method, http1::framing body, std::size_t early_body) noexcept {
  static constexpr std::array<std::string_view, 6> idempotent{"GET",   "HEAD",   "OPTIONS",
                                                              "TRACE", "DELETE", "PUT"};
  const bool whole = body.type == http1::framing::kind::none ||
                     (body.type == http1::framing::kind::length && early_body == body.length);
  return whole && std::find(idempotent.begin(), idempotent.end(), method) != idempotent.end();
}

void throw_exception_from_error(const http1::refusal& r, const boost::source_location&) {
  throw std::logic_error("refused request used as admitted: " + std::string(r.message));
}

} // namespace tokengate::proxy
