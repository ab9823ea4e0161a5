#pragma once

#include "proxy/http1.hpp"
#include "proxy/path.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/ip.hpp"

#include <string>
#include <string_view>

namespace tokengate::proxy {

/// What the upstream is told of a request beyond its own header (README "Headers sent
/// upstream").
struct forward_context {
  const normalized_target& target;
  http1::framing body;                 ///< as read from the client
  const tokenapi::auth_entry* token;   ///< nullptr on open routes
  std::string_view peer;               ///< the TCP peer's address, appended to X-Forwarded-For
  bool peer_trusted;                   ///< keep the peer's X-Forwarded-For/-Proto/-Host
  std::string_view client;             ///< the address the request was decided on: X-Real-IP
  std::string_view upstream_authority; ///< Host for HTTP/1.0 requests that sent none
};

/// Writes the head to send upstream into `out` (cleared first): the normalised path and the
/// query as sent; removed, in every spelling a backend could read as the same name (case, '_'
/// or another separator for '-', see `http1::backend_equals`): X-API-Key, hop-by-hop fields,
/// fields named in Connection, Expect, client-address and override fields, and any X-Token-*;
/// every name with '_' dropped; X-Token-Id/-Name/-Permissions set from the token;
/// X-Forwarded-For/-Proto/-Host and X-Real-IP stated by tokengate; framing re-stated.
void build_upstream_request(std::string& out, const http1::head& request,
                            const forward_context& context);

/// How the response body goes to the client.
enum class client_framing {
  as_upstream, ///< no body, or Content-Length: forward the upstream's fields as they are
  chunked,     ///< re-frame as chunked (upstream sent chunked or read-until-close)
  until_close, ///< HTTP/1.0 client: raw body, then close
};

/// Writes the head to send the client into `out` (cleared first): the upstream's fields less
/// hop-by-hop ones and those named in Connection, framing as `framing`, `extra` (whole
/// "<name>: <value>\r\n" lines of tokengate's own) as is, and "Connection: close" when `close`.
void build_client_response(std::string& out, const http1::head& response, client_framing framing,
                           bool close, std::string_view extra = {});

} // namespace tokengate::proxy
