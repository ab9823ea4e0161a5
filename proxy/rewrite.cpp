#include "proxy/rewrite.hpp"

#include "proxy/answer.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace tokengate::proxy {
namespace {

using http1::backend_equals;
using http1::iequals;

// Fields that describe one connection, never the message (RFC 9110 section 7.6.1), plus the
// framing fields, which tokengate states itself.
constexpr std::string_view hop_by_hop[]{
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
    "http2-settings",
};

bool is_hop_by_hop(std::string_view name) {
  for (auto h : hop_by_hop)
    if (backend_equals(name, h))
      return true;
  return false;
}

// Request fields the upstream must hear from tokengate only: the key, the client-address
// family (tokengate states the address it decided on), path and method overrides that some
// frameworks obey (Symfony's X-Original-URL, Rails' and Express's X-HTTP-Method-Override), the
// scheme fields some take before X-Forwarded-Proto (Rack reads X-Forwarded-Scheme first; IIS
// ARR's X-ARR-SSL, Cloudflare's CF-Visitor), and CGI's HTTP_PROXY (httpoxy).
constexpr std::string_view replaced_on_request[]{
    "x-api-key",
    "x-forwarded",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "front-end-https",
    "x-url-scheme",
    "x-scheme",
    "x-host",
    "x-arr-ssl",
    "cf-visitor",
    "proxy",
    "x-authenticated-user",
    "expect",
    "x-client-verify",
    "x-client-dn",
    "x-arr-clientcert",
};
// Families of names removed whatever follows the prefix: X-Token-*; every other X-Forwarded-*
// (-For, -Proto and -Host are set anew) and X-Original-* (-URL, -URI, -Method, -Host, -Proto,
// -For); the user and group fields backends trust from an auth proxy (Authelia's and
// Authentik's Remote-*, Kubernetes' X-Remote-*, Grafana's X-WEBAUTH-*, oauth2-proxy's
// X-Auth-Request-*); and the client-certificate fields that proxies in front of a backend
// commonly set (RFC 9440's Client-Cert and Client-Cert-Chain, ingress-nginx's ssl-client-*,
// Apache's and HAProxy's X-SSL-*, AWS's X-Amzn-Mtls-*; Envoy's and Traefik's are X-Forwarded-*).
constexpr std::string_view replaced_prefixes[]{
    "x-token-",        "x-forwarded-", "x-original-",   "remote-", "x-remote-",   "x-webauth-",
    "x-auth-request-", "client-cert",  "x-client-cert", "x-ssl-",  "ssl-client-", "x-amzn-mtls-",
};

// Whether a backend (or a client) could read `name` as one that starts with `prefix`.
bool starts_as(std::string_view name, std::string_view prefix) {
  return name.size() >= prefix.size() && backend_equals(name.substr(0, prefix.size()), prefix);
}

bool is_replaced(std::string_view name) {
  for (auto prefix : replaced_prefixes)
    if (starts_as(name, prefix))
      return true;
  for (auto h : replaced_on_request)
    if (backend_equals(name, h))
      return true;
  return false;
}

// Names with '_' are dropped, as nginx does by default: CGI, WSGI, PHP and Rack read
// "X_Token_Id" and "X-Token-Id" as the same variable, so no such name reaches the upstream.
bool has_underscore(std::string_view name) { return name.find('_') != std::string_view::npos; }

bool forwardable(const http1::head& h, const http1::field& f, bool check_connection) {
  return !is_hop_by_hop(f.name) && !(check_connection && http1::named_in_connection(h, f.name));
}

// What the client said of earlier hops, believed only from a trusted proxy.
struct forwarding_fields {
  std::string_view host; ///< the request's own Host
  std::string_view proto;
  std::string_view forwarded_host;
  std::string forwarded_for;      ///< every X-Forwarded-For field, as one list
  bool has_forwarded_for = false; ///< one came, if only an empty one (an empty entry)
};

// Copies the fields the upstream may see into `out` and collects the forwarding ones.
forwarding_fields copy_request_fields(std::string& out, const http1::head& request,
                                      const forward_context& c) {
  const bool check_connection = http1::connection_of(request).names_fields;
  forwarding_fields seen;
  bool has_host = false; // an empty Host is still one: adding another would send two
  for (const auto& f : request.fields) {
    if (iequals(f.name, "host")) {
      // Host describes the message, whatever Connection claims.
      seen.host = f.value;
      has_host = true;
      append_field(out, f.name, f.value);
      continue;
    }
    if (iequals(f.name, "x-forwarded-for")) {
      // As client_address() walks them: a field with no value is an empty entry.
      if (std::exchange(seen.has_forwarded_for, true))
        seen.forwarded_for.append(", ");
      seen.forwarded_for.append(f.value);
    } else if (iequals(f.name, "x-forwarded-proto")) {
      seen.proto = f.value;
    } else if (iequals(f.name, "x-forwarded-host")) {
      seen.forwarded_host = f.value;
    }
    if (has_underscore(f.name) || is_replaced(f.name) || !forwardable(request, f, check_connection))
      continue;
    append_field(out, f.name, f.value);
  }
  if (!has_host)
    append_field(out, "Host", c.upstream_authority);
  return seen;
}

void append_framing(std::string& out, http1::framing body) {
  switch (body.type) {
  case http1::framing::kind::length:
    out.append("Content-Length: ");
    append_number(out, body.length);
    out.append("\r\n");
    break;
  case http1::framing::kind::chunked:
    out.append("Transfer-Encoding: chunked\r\n");
    break;
  default:
    break;
  }
}

// The client-address family as tokengate computed it: a trusted proxy's list and values are
// kept, anyone else's are replaced.
void append_forwarding(std::string& out, forwarding_fields& seen, const forward_context& c) {
  auto& list = seen.forwarded_for;
  if (!c.peer_trusted) {
    list.clear();
    seen.has_forwarded_for = false;
  }
  if (seen.has_forwarded_for)
    list.append(", ");
  list.append(c.peer);
  append_field(out, "X-Forwarded-For", list);
  append_field(out, "X-Forwarded-Proto",
               c.peer_trusted && !seen.proto.empty() ? seen.proto
               : c.tls                               ? "https"
                                                     : "http");
  const auto host =
      c.peer_trusted && !seen.forwarded_host.empty() ? seen.forwarded_host : seen.host;
  if (!host.empty())
    append_field(out, "X-Forwarded-Host", host);
  append_field(out, "X-Real-IP", c.client);
  if (!c.client_certificate.empty())
    append_field(out, client_certificate_field, c.client_certificate);
}

void append_quoted(std::string& out, std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  out.push_back('"');
  for (const char ch : value) {
    const auto b = static_cast<unsigned char>(ch);
    if (b == '"' || b == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (b < 0x20 || b >= 0x7f) {
      out.append("\\x");
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 15]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

} // namespace

std::string format_client_certificate(std::string_view subject,
                                      const std::vector<certificate_name>& names) {
  std::string out = "Subject=";
  append_quoted(out, subject);
  for (const auto& n : names) {
    out.push_back(';');
    out.append(n.kind);
    out.push_back('=');
    append_quoted(out, n.value);
  }
  return out;
}

void build_upstream_request(std::string& out, const http1::head& request,
                            const forward_context& c) {
  out.clear();
  out.append(request.method);
  out.push_back(' ');
  out.append(c.target.path);
  if (c.target.has_query) {
    out.push_back('?');
    out.append(c.target.query);
  }
  out.append(" HTTP/1.1\r\n");

  auto forwarding = copy_request_fields(out, request, c);
  append_framing(out, c.body);
  append_forwarding(out, forwarding, c);
  if (c.token) {
    append_field(out, "X-Token-Id", c.token->id());
    append_field(out, "X-Token-Name", c.token->name());
    append_field(out, "X-Token-Permissions", c.token->permissions_header());
  }
  out.append("\r\n");
}

void build_client_response(std::string& out, const http1::head& response, client_framing framing,
                           bool close, std::string_view extra) {
  out.clear();
  append_status_line(out, response.status);
  const bool check_connection = http1::connection_of(response).names_fields;
  // The key's fields are tokengate's to say (README "Key lifecycle"): the upstream's X-Token-*
  // never reach the client, nor its RateLimit fields when tokengate sends the key's own.
  const bool own_rate_limit = extra.find("RateLimit-Policy:") != std::string_view::npos;
  for (const auto& f : response.fields) {
    if (framing == client_framing::as_upstream && iequals(f.name, "content-length")) {
      append_field(out, f.name, f.value);
      continue;
    }
    if (starts_as(f.name, "x-token-") ||
        (own_rate_limit &&
         (backend_equals(f.name, "ratelimit") || backend_equals(f.name, "ratelimit-policy"))))
      continue;
    if (forwardable(response, f, check_connection))
      append_field(out, f.name, f.value);
  }
  if (framing == client_framing::chunked)
    out.append("Transfer-Encoding: chunked\r\n");
  out.append(extra);
  if (close)
    out.append("Connection: close\r\n");
  out.append("\r\n");
}

} // namespace tokengate::proxy
