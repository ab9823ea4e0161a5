// What the upstream receives: the request head rewritten for it (path, key, X-Token-*,
// hop-by-hop and forwarding fields, framing, Host). The heads built are read back with the
// tests' own parser (rewrite_checks.hpp), not the proxy's.
#include "proxy/rewrite.hpp"

#include "tests/unit/proxy/rewrite_checks.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/token.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::permission;
using namespace tokengate::proxy::testing;

TEST_CASE("the upstream gets the normalised path and the query as sent", "[rewrite]") {
  forwarding f("GET /public/../alerts/%7e7//x?q=%2F&y=../z HTTP/1.1\r\nHost: api.example\r\n\r\n");
  CHECK(f.upstream_sees().start_line == "GET /alerts/~7/x?q=%2F&y=../z HTTP/1.1");

  forwarding bare("DELETE /a/./b HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(bare.upstream_sees().start_line == "DELETE /a/b HTTP/1.1");

  forwarding empty_query("GET /a? HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(empty_query.upstream_sees().start_line == "GET /a? HTTP/1.1");
}

TEST_CASE("the API key never reaches the upstream", "[rewrite]") {
  forwarding f("GET /alerts HTTP/1.1\r\nHost: x\r\nX-API-Key: tg_secret1\r\n"
               "x-api-key: tg_secret2\r\nX-API-KEY: tg_secret3\r\nAccept: */*\r\n\r\n");
  const auto up = f.upstream_sees();
  CHECK(up.count("X-API-Key") == 0);
  for (const auto& [name, value] : up.fields)
    CHECK(value.find("tg_secret") == std::string::npos);
  CHECK(up.one("Accept") == "*/*");
}

TEST_CASE("the X-Token-* fields come from tokengate only", "[rewrite]") {
  const std::string forged = "GET /alerts HTTP/1.1\r\nHost: x\r\n"
                             "X-Token-Id: forged-id\r\nx-token-name: forged\r\n"
                             "X-TOKEN-PERMISSIONS: OrganizationAPITokenModify\r\n"
                             "X-Token-Expires: never\r\n\r\n";
  SECTION("on a route that needs a key: replaced from the token") {
    forwarding f(forged);
    const auto up = f.upstream_sees();
    CHECK(up.one("X-Token-Id") == "6f1c2a34-0000-4000-8000-000000000001");
    CHECK(up.one("X-Token-Name") == "ci deploy");
    CHECK(up.one("X-Token-Permissions") == "AlertModify,AlertRead");
    CHECK(up.count("X-Token-Expires") == 0);
  }
  SECTION("on an open route: removed, none added") {
    forwarding f(forged);
    f.token = nullptr;
    const auto up = f.upstream_sees();
    CHECK_FALSE(up.has_name_starting("X-Token-"));
  }
}

TEST_CASE("hop-by-hop fields and those named in Connection are not forwarded", "[rewrite]") {
  forwarding f("POST /alerts HTTP/1.1\r\nHost: x\r\n"
               "Connection: keep-alive, X-Hop\r\nconnection: x-other-hop\r\n"
               "X-Hop: 1\r\nX-Other-Hop: 2\r\nX-Kept: 3\r\n"
               "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
               "Trailer: X-Checksum\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"
               "Content-Length: 5\r\n\r\n");
  const auto up = f.upstream_sees();
  for (const char* gone : {"Connection", "X-Hop", "X-Other-Hop", "Keep-Alive", "Proxy-Connection",
                           "TE", "Trailer", "Proxy-Authorization"}) {
    INFO(gone);
    CHECK(up.count(gone) == 0);
  }
  CHECK(up.one("X-Kept") == "3");
  CHECK(up.one("Host") == "x");
}

TEST_CASE("Upgrade: h2c and HTTP2-Settings are never forwarded", "[rewrite][smuggling]") {
  SECTION("a well-formed h2c upgrade") {
    forwarding f("GET /alerts HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.count("Upgrade") == 0);
    CHECK(up.count("HTTP2-Settings") == 0);
    CHECK(up.count("Connection") == 0);
  }
  SECTION("without naming them in Connection") {
    forwarding f("GET /alerts HTTP/1.1\r\nHost: x\r\n"
                 "upgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.count("Upgrade") == 0);
    CHECK(up.count("HTTP2-Settings") == 0);
  }
  SECTION("a websocket upgrade is not forwarded either") {
    forwarding f("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    CHECK(f.upstream_sees().count("Upgrade") == 0);
  }
}

TEST_CASE("Expect is answered by tokengate, not forwarded", "[rewrite]") {
  forwarding f("PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               "Content-Length: 1048576\r\n\r\n");
  const auto up = f.upstream_sees();
  CHECK(up.count("Expect") == 0);
  CHECK(up.one("Content-Length") == "1048576");
}

TEST_CASE("X-Forwarded-For is the trusted proxy's list with the peer appended", "[rewrite]") {
  SECTION("no list") {
    forwarding f("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f.upstream_sees().one("X-Forwarded-For") == "203.0.113.7");
  }
  SECTION("an untrusted client's list is replaced by its address") {
    forwarding f(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1, 198.51.100.2\r\n\r\n");
    CHECK(f.upstream_sees().one("X-Forwarded-For") == "203.0.113.7");
  }
  SECTION("a trusted proxy's list is kept") {
    forwarding f(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1, 198.51.100.2\r\n\r\n");
    f.peer_trusted = true;
    CHECK(f.upstream_sees().one("X-Forwarded-For") == "198.51.100.1, 198.51.100.2, 203.0.113.7");
  }
  SECTION("several fields form one list") {
    forwarding f("GET / HTTP/1.1\r\nHost: x\r\nx-forwarded-for: a\r\nAccept: */*\r\n"
                 "X-Forwarded-For: b\r\n\r\n");
    f.peer_trusted = true;
    CHECK(f.upstream_sees().one("X-Forwarded-For") == "a, b, 203.0.113.7");
  }
  SECTION("a field with no value is an empty entry, as the sidecar walked it, wherever it stands") {
    forwarding f("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:\r\nX-Forwarded-For: a\r\n"
                 "X-Forwarded-For:\r\n\r\n");
    f.peer_trusted = true;
    CHECK(f.upstream_sees().one("X-Forwarded-For") == ", a, , 203.0.113.7");
  }
  SECTION("an IPv6 peer") {
    forwarding f("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    f.peer = *tokenapi::ip_address::parse("2001:DB8::1");
    CHECK(f.upstream_sees().one("X-Forwarded-For") == "2001:db8::1");
  }
}

TEST_CASE("no spelling of a protected field reaches the upstream", "[rewrite][spelling]") {
  // Every name a CGI/WSGI/PHP/Rack backend reads as the same variable as ours.
  forwarding f("GET / HTTP/1.1\r\nHost: x\r\n"
               "X_API_Key: tg_secret\r\nx-api_KEY: tg_secret\r\nX.Api.Key: tg_secret\r\n"
               "X_Token_Id: forged\r\nx_token_permissions: UserModify\r\n"
               "X-Token_Name: forged\r\nX-TOKEN-ROLE: forged\r\n"
               "Forwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX_Real_IP: 10.0.0.1\r\n"
               "True-Client-IP: 10.0.0.1\r\nX-Client-IP: 10.0.0.1\r\n"
               "X-Forwarded: for=10.0.0.1\r\nX-Cluster-Client-IP: 10.0.0.1\r\n"
               "CF-Connecting-IP: 10.0.0.1\r\nFastly-Client-IP: 10.0.0.1\r\n"
               "X-Original-Forwarded-For: 10.0.0.1\r\nX-HTTP-Method: DELETE\r\n"
               "X-Forwarded.For: 10.0.0.1\r\nX-Forwarded-Port: 1\r\n"
               "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n"
               "X-HTTP-Method-Override: DELETE\r\nX-Method-Override: DELETE\r\n"
               "X-Original-Method: DELETE\r\nX-Original-URI: /admin\r\n"
               "X-Forwarded-Scheme: https\r\nX-Forwarded-Ssl: on\r\nFront-End-Https: on\r\n"
               "X-Url-Scheme: https\r\nX-Scheme: https\r\nX-Forwarded-Protocol: https\r\n"
               "X-Original-Host: forged\r\nX-Host: forged\r\nRemote-User: forged\r\n"
               "X-Remote-User: forged\r\nX-Authenticated-User: forged\r\n"
               "X-Forwarded-User: forged\r\nX-Auth-Request-Email: forged\r\n"
               "Remote-Groups: forged\r\nRemote-Email: forged\r\nX-Remote-Group: forged\r\n"
               "X-Remote-Extra-Scopes: forged\r\nX-WEBAUTH-USER: forged\r\n"
               "X-Original-Proto: https\r\nX-Original-For: 10.0.0.1\r\nX-ARR-SSL: on\r\n"
               "CF-Visitor: https\r\nProxy: http://10.0.0.1:3128\r\n"
               "Transfer.Encoding: chunked\r\nContent~Length: 5\r\n"
               "My_Header: dropped\r\nX-Custom: kept\r\n\r\n");
  const auto up = f.upstream_sees();
  for (const auto& [name, value] : up.fields) {
    INFO(name << ": " << value);
    CHECK(name.find('_') == std::string::npos);
    CHECK(value != "tg_secret");
    CHECK(value != "forged");
    CHECK(value != "UserModify");
    CHECK(value != "/admin");
    CHECK(value != "DELETE");
    CHECK(value != "https"); // a plain connection: no field may say otherwise
    CHECK(value != "on");
    CHECK(value.find("10.0.0.1") == std::string::npos);
  }
  CHECK(up.count("Forwarded") == 0);
  CHECK(up.count("Transfer.Encoding") == 0);
  CHECK(up.count("Content~Length") == 0);
  CHECK(up.one("X-Real-IP") == "203.0.113.7");
  CHECK(up.one("X-Token-Id") == "6f1c2a34-0000-4000-8000-000000000001");
  CHECK(up.one("X-Custom") == "kept");
}

TEST_CASE("X-Forwarded-Proto is https on a TLS connection", "[rewrite][tls]") {
  forwarding f("GET / HTTP/1.1\r\nHost: api.example\r\nX-Forwarded-Proto: http\r\n\r\n");
  f.tls = true;
  CHECK(f.upstream_sees().one("X-Forwarded-Proto") == "https");
}

TEST_CASE("X-Forwarded-Client-Cert is stated by tokengate only, in no client spelling",
          "[rewrite][tls]") {
  const std::string text = "GET / HTTP/1.1\r\nHost: api.example\r\n"
                           "X-Forwarded-Client-Cert: Subject=\"CN=admin\"\r\n"
                           "x-forwarded-client-cert: Subject=\"CN=admin\"\r\n"
                           "X-Forwarded.Client-Cert: Subject=\"CN=admin\"\r\n"
                           "X-SSL-Client-Verify: SUCCESS\r\nX-Client-DN: CN=admin\r\n\r\n";
  forwarding f(text);
  auto up = f.upstream_sees();
  CHECK(up.count("X-Forwarded-Client-Cert") == 0);
  CHECK(up.count("X-Forwarded.Client-Cert") == 0);
  CHECK(up.count("X-SSL-Client-Verify") == 0);
  CHECK(up.count("X-Client-DN") == 0);
  f.client_certificate = R"(Subject="CN=job")";
  up = f.upstream_sees();
  CHECK(up.one("X-Forwarded-Client-Cert") == R"(Subject="CN=job")");
}

TEST_CASE("every client-certificate field a backend may trust is removed, by family",
          "[rewrite][tls]") {
  const std::vector<std::string> names = {"Client-Cert",
                                          "Client-Cert-Chain",
                                          "ssl-client-subject-dn",
                                          "ssl-client-issuer-dn",
                                          "ssl-client-verify",
                                          "ssl-client-cert",
                                          "X-SSL-Cert",
                                          "X-SSL-Client-Serial",
                                          "X-Client-Cert-Chain",
                                          "X-Amzn-Mtls-Clientcert",
                                          "X-Amzn-Mtls-Clientcert-Leaf",
                                          "X-Forwarded-Tls-Client-Cert",
                                          "X-Forwarded-Tls-Client-Cert-Info",
                                          "X-ARR-ClientCert",
                                          "X-Client-Verify",
                                          "X-Client-DN",
                                          "X-Forwarded-Client-Cert-Chain"};
  std::string text = "GET / HTTP/1.1\r\nHost: api.example\r\nX-Client-Version: 7\r\n";
  for (const auto& n : names)
    text += n + ": forged\r\n";
  forwarding f(text + "\r\n");
  const auto up = f.upstream_sees();
  for (const auto& n : names) {
    INFO(n);
    CHECK(up.count(n) == 0);
  }
  // A name that only looks alike goes through.
  CHECK(up.one("X-Client-Version") == "7");
}

TEST_CASE("the client certificate's names are one quoted, escaped line", "[rewrite][tls]") {
  CHECK(format_client_certificate("CN=job,O=Example", {}) == R"(Subject="CN=job,O=Example")");
  CHECK(format_client_certificate(
            "CN=a\\, b",
            {{"DNS", "job.example"}, {"URI", "spiffe://example/job"}, {"IP", "10.0.0.1"}}) ==
        R"(Subject="CN=a\\, b";DNS="job.example";URI="spiffe://example/job";IP="10.0.0.1")");
  CHECK(format_client_certificate("CN=x", {{"DNS", "a\"b\r\nX-Evil: 1\x80"}}) ==
        R"(Subject="CN=x";DNS="a\"b\x0D\x0AX-Evil: 1\x80")");
}

TEST_CASE("X-Forwarded-Proto and -Host are believed only from a trusted peer", "[rewrite]") {
  const std::string text = "GET / HTTP/1.1\r\nHost: api.example\r\n"
                           "X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n\r\n";
  SECTION("untrusted peer") {
    forwarding f(text);
    const auto up = f.upstream_sees();
    CHECK(up.one("X-Forwarded-Proto") == "http");
    CHECK(up.one("X-Forwarded-Host") == "api.example");
  }
  SECTION("trusted peer") {
    forwarding f(text);
    f.peer_trusted = true;
    const auto up = f.upstream_sees();
    CHECK(up.one("X-Forwarded-Proto") == "https");
    CHECK(up.one("X-Forwarded-Host") == "public.example");
  }
  SECTION("trusted peer that sent none") {
    forwarding f("GET / HTTP/1.1\r\nHost: api.example\r\n\r\n");
    f.peer_trusted = true;
    const auto up = f.upstream_sees();
    CHECK(up.one("X-Forwarded-Proto") == "http");
    CHECK(up.one("X-Forwarded-Host") == "api.example");
  }
}

TEST_CASE("the body framing is re-stated for the upstream", "[rewrite]") {
  SECTION("Content-Length") {
    forwarding f("POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 0012\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.one("Content-Length") == "12");
    CHECK(up.count("Transfer-Encoding") == 0);
  }
  SECTION("chunked") {
    forwarding f("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.one("Transfer-Encoding") == "chunked");
    CHECK(up.count("Content-Length") == 0);
  }
  SECTION("no body") {
    forwarding f("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.count("Transfer-Encoding") == 0);
    CHECK(up.count("Content-Length") == 0);
    CHECK(up.body.empty());
  }
}

TEST_CASE("the upstream always gets exactly one Host", "[rewrite]") {
  SECTION("HTTP/1.0 without Host: the upstream's authority, sent as HTTP/1.1") {
    forwarding f("GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n");
    const auto up = f.upstream_sees();
    CHECK(up.start_line == "GET /x HTTP/1.1");
    CHECK(up.one("Host") == "127.0.0.1:8081");
    CHECK(up.count("X-Forwarded-Host") == 0);
  }
  SECTION("the client's Host is kept") {
    forwarding f("GET /x HTTP/1.0\r\nhost: api.example:8080\r\n\r\n");
    CHECK(f.upstream_sees().one("Host") == "api.example:8080");
  }
  SECTION("an empty Host is not doubled") {
    forwarding f("GET /x HTTP/1.1\r\nHost:\r\n\r\n");
    CHECK(f.upstream_sees().count("Host") == 1);
  }
  SECTION("a Connection header naming Host does not remove it") {
    forwarding f("GET /x HTTP/1.1\r\nHost: api.example\r\nConnection: Host\r\n\r\n");
    CHECK(f.upstream_sees().one("Host") == "api.example");
  }
}

TEST_CASE("a full request as the upstream sees it", "[rewrite]") {
  forwarding f("POST /public/../alerts?x=1 HTTP/1.1\r\n"
               "Host: api.example\r\n"
               "User-Agent: curl/8\r\n"
               "X-API-Key: tg_secret\r\n"
               "Connection: keep-alive\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: 2\r\n"
               "X-Forwarded-For: 198.51.100.1\r\n"
               "\r\n");
  std::string out;
  const auto peer = f.peer.to_string();
  build_upstream_request(
      out, f.head,
      {f.target, f.body, f.token.get(), peer, false, peer, "127.0.0.1:8081", false, {}});
  CHECK(out == "POST /alerts?x=1 HTTP/1.1\r\n"
               "Host: api.example\r\n"
               "User-Agent: curl/8\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: 2\r\n"
               "X-Forwarded-For: 203.0.113.7\r\n"
               "X-Forwarded-Proto: http\r\n"
               "X-Forwarded-Host: api.example\r\n"
               "X-Real-IP: 203.0.113.7\r\n"
               "X-Token-Id: 6f1c2a34-0000-4000-8000-000000000001\r\n"
               "X-Token-Name: ci deploy\r\n"
               "X-Token-Permissions: AlertModify,AlertRead\r\n"
               "\r\n");
}
