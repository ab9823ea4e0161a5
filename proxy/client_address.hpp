#pragma once

#include "proxy/http1.hpp"
#include "tokenapi/ip.hpp"

#include <span>

namespace tokengate::proxy {

/// The address a request is decided on (README "Trusted proxies"): the TCP peer, unless the peer
/// is one of `trusted`, in which case the right-most X-Forwarded-For address that is not itself
/// trusted. An entry that is not an address ends the walk at the last trusted hop.
[[nodiscard]] tokenapi::ip_address client_address(const tokenapi::ip_address& peer,
                                                  const http1::head& request,
                                                  std::span<const tokenapi::cidr_block> trusted);

} // namespace tokengate::proxy
