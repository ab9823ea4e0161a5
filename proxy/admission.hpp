#pragma once

#include "proxy/http1.hpp"
#include "proxy/path.hpp"

#include <boost/system/result.hpp>

#include <optional>
#include <string_view>

namespace tokengate::proxy {

/// The first phase of every request on the main listener: what tokengate can tell from its
/// head alone, before any route, key or body. Pure functions, no I/O.

/// A request whose head is acceptable.
struct admitted {
  http1::framing body;                 ///< how its body is delimited
  std::optional<std::string_view> key; ///< the X-API-Key value, a view into the head
  bool keep_alive = false;             ///< HTTP/1.1 and no "Connection: close"
  bool want_continue = false;          ///< "Expect: 100-continue" with a body to wait for
};

/// Checks a parsed request head, in this order: the method (CONNECT is 501), framing (no
/// ambiguity a smuggling attack could use), target (normalised into `target`, reusing its
/// capacity), Host (exactly one on HTTP/1.1, and valid), X-API-Key (at most one), Expect (only
/// 100-continue). A refusal is answered with "Connection: close": the framing of what follows
/// cannot be trusted.
[[nodiscard]] boost::system::result<admitted, http1::refusal>
admit_request(const http1::head& h, normalized_target& target);

/// Whether a request may be sent again on a new connection when a reused one turns out to have
/// been closed by the upstream: idempotent (RFC 9110 section 9.2.2), and all of it in hand
/// (`early_body`: the body bytes that came with the head).
[[nodiscard]] bool retryable(std::string_view method, http1::framing body,
                             std::size_t early_body) noexcept;

/// For boost::system::result<T, http1::refusal>::value(): tokengate never calls it on an error.
[[noreturn]] void throw_exception_from_error(const http1::refusal& r,
                                             const boost::source_location& where);

} // namespace tokengate::proxy
