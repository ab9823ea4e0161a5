// Hostile input through the real sidecar and a real upstream: every other spelling of what
// tokengate compares (header names, methods, paths, CIDR forms, JSON keys, Host) is either the
// same thing to tokengate and the upstream, or refused. Each case checks what the upstream saw.
#include "tests/integration/proxy_fixture.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>

using namespace tokengate;
using test::proxy_fixture;

namespace {

// Sends raw bytes on a new connection and returns the whole answer.
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  test::raw_connection c(port);
  REQUIRE(c.send(bytes));
  return c.read_until_close();
}

std::string body_of(const std::string& raw) { return raw.substr(raw.find("\r\n\r\n") + 4); }

std::size_t token_count(proxy_fixture& f) {
  auto r = test::request(f.gate.port(), "GET", "/api-tokens?limit=1000",
                         {{"X-API-Key", f.gate.admin_key()}});
  REQUIRE(r.status == 200);
  return r.json().as_object().at("results").as_array().size();
}

test::http_response create(proxy_fixture& f, const std::string& body) {
  return test::request(f.gate.port(), "POST", "/api-tokens",
                       {{"X-API-Key", f.gate.admin_key()}, {"Content-Type", "application/json"}},
                       body);
}

} // namespace

TEST_CASE_METHOD(proxy_fixture, "no spelling of X-API-Key or X-Token-* reaches the upstream",
                 "[spelling][headers]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  SECTION("on an open route, with no key") {
    auto r = get("/public/page", {{"X_Token_Id", "forged"},
                                  {"x_token_permissions", "UserModify"},
                                  {"X-Token_Name", "forged"},
                                  {"X_API_Key", reader.value},
                                  {"X.API.Key", reader.value}});
    REQUIRE(r.status == 200);
  }
  SECTION("added to a real token's identity") {
    auto r = get_with(reader.value, "/alerts/7",
                      {{"X_Token_Id", "forged"}, {"x_token_permissions", "UserModify"}});
    REQUIRE(r.status == 200);
    const auto seen = upstream.last();
    CHECK(seen.header("X-Token-Id") == reader.id);
    CHECK(seen.header("X-Token-Permissions") == "AlertRead");
  }
  const auto seen = upstream.last();
  for (const auto& [name, value] : seen.headers) {
    INFO(name << ": " << value);
    CHECK(name.find('_') == std::string::npos); // names with '_' never go upstream
    CHECK(value != reader.value);
    CHECK(value != "forged");
    CHECK(value != "UserModify");
  }
  // A key under another name is no key at all.
  auto underscored = get("/alerts/7", {{"X_API_Key", reader.value}});
  CHECK(underscored.status == 401);
  CHECK(underscored.message() == "missing X-API-Key header");
}

TEST_CASE_METHOD(proxy_fixture, "client-address and override headers come from tokengate only",
                 "[spelling][headers]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  auto r = get_with(reader.value, "/alerts/7",
                    {{"Forwarded", "for=10.9.9.9;proto=https"},
                     {"X-Real-IP", "10.9.9.9"},
                     {"True-Client-IP", "10.9.9.9"},
                     {"X-Forwarded-For", "10.9.9.9"},
                     {"X-Original-URL", "/admin"},
                     {"X-HTTP-Method-Override", "DELETE"}});
  REQUIRE(r.status == 200);
  const auto seen = upstream.last();
  CHECK(seen.count("Forwarded") == 0);
  CHECK(seen.count("True-Client-IP") == 0);
  CHECK(seen.count("X-Original-URL") == 0);
  CHECK(seen.count("X-HTTP-Method-Override") == 0);
  CHECK(seen.header("X-Real-IP") == "127.0.0.1");
  CHECK(seen.header("X-Forwarded-For") == "127.0.0.1");
}

TEST_CASE_METHOD(proxy_fixture, "a method not in upper case is refused before any route",
                 "[spelling][methods]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  for (const std::string method : {"delete", "Delete", "get", "dElEtE"}) {
    INFO(method);
    const auto answer = raw_exchange(gate.port(), method + " /alerts/7 HTTP/1.1\r\nHost: x\r\n" +
                                                      "X-API-Key: " + reader.value + "\r\n\r\n");
    CHECK(test::status_of(answer) == 400);
    CHECK_THAT(body_of(answer), Catch::Contains("upper case"));
  }
  CHECK(upstream.requests().empty());
  // The upper-case spelling is decided as before: DELETE needs AlertModify.
  CHECK(test::request(gate.port(), "DELETE", "/alerts/7", {{"X-API-Key", reader.value}}).status ==
        403);
  CHECK(upstream.requests().empty());
}

TEST_CASE_METHOD(proxy_fixture, "dot segments with parameters never pass an open prefix",
                 "[spelling][paths]") {
  for (const std::string target :
       {"/public/..;/admin", "/public/.;x=1/../admin", "/public/%2e%2e;/admin",
        "/public/%2e;/admin", "/public/..%3b/admin", "/public/%252e%252e/admin",
        "/public/%0a/admin", "/public/..%3F/admin", "/public/..%23"}) {
    INFO(target);
    auto r = get(target);
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::Contains("request path"));
  }
  CHECK(upstream.requests().empty());
  // A parameter on an ordinary segment is an ordinary character.
  REQUIRE(get("/public/a;b=1").status == 200);
  CHECK(upstream.last().target == "/public/a;b=1");
}

TEST_CASE_METHOD(proxy_fixture, "an invalid Host is 400 and never reaches X-Forwarded-Host",
                 "[spelling][host]") {
  for (const std::string host : {"a/admin", "a, b", "a,b", "user@a", "a:99999", "[::1"}) {
    INFO(host);
    const auto answer =
        raw_exchange(gate.port(), "GET /public/x HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    CHECK(test::status_of(answer) == 400);
    CHECK_THAT(body_of(answer), Catch::Contains("invalid Host header"));
  }
  CHECK(upstream.requests().empty());
  REQUIRE(test::status_of(raw_exchange(gate.port(), "GET /public/x HTTP/1.1\r\n"
                                                    "Host: api.example:8443\r\n"
                                                    "Connection: close\r\n\r\n")) == 200);
  CHECK(upstream.last().header("X-Forwarded-Host") == "api.example:8443");
}

TEST_CASE_METHOD(proxy_fixture, "a JSON key given twice is refused and changes nothing",
                 "[spelling][json]") {
  const auto before = token_count(*this);
  auto r = create(*this, R"({"name":"x","permissions":["AlertRead"],)"
                         R"("allowedCIDRBlocks":["10.0.0.0/8"],"allowedCIDRBlocks":[]})");
  CHECK(r.status == 400);
  CHECK(r.message() == "request body has a duplicate key \"allowedCIDRBlocks\"");
  CHECK(token_count(*this) == before);
}

TEST_CASE_METHOD(proxy_fixture, "CIDR blocks admit exactly what they spell", "[spelling][cidr]") {
  const auto before = token_count(*this);
  for (const std::string blocks :
       {R"(["::ffff:10.0.0.0/8"])", R"(["1.2.3.4\u0000junk/8"])", R"(null)"}) {
    INFO(blocks);
    auto r = create(*this, R"({"name":"x","permissions":["AlertRead"],"allowedCIDRBlocks":)" +
                               blocks + "}");
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::Contains("allowedCIDRBlocks"));
  }
  CHECK(token_count(*this) == before);

  // The mapped spelling of 10.0.0.0/8 is 10.0.0.0/8: not this loopback client.
  auto r = create(*this, R"({"name":"x","permissions":["AlertRead"],)"
                         R"("allowedCIDRBlocks":["::ffff:10.0.0.0/104"]})");
  REQUIRE(r.status == 200);
  CHECK(boost::json::serialize(r.json().as_object().at("allowedCIDRBlocks")) ==
        R"(["10.0.0.0/8"])");
  const std::string value(r.json().as_object().at("value").as_string());
  CHECK(get_with(value, "/alerts/7").status == 403);
  // ::/0 is every IPv6 address, not this IPv4 client.
  auto v6 = gate.create_token("v6", {"AlertRead"}, {"::/0"});
  CHECK(get_with(v6.value, "/alerts/7").status == 403);
  CHECK(upstream.requests().empty());
}

TEST_CASE_METHOD(proxy_fixture, "names with C1 control characters are refused",
                 "[spelling][json]") {
  auto r = create(*this, R"({"name":"a\u0085b","permissions":[]})");
  CHECK(r.status == 400);
  CHECK(r.message() == "\"name\" must not contain control characters");
}

TEST_CASE_METHOD(proxy_fixture, "HEAD on the token API is GET without the body", "[api][head]") {
  const auto key = gate.admin_key();
  for (const std::string target : {"/api-tokens", "/api-tokens/self"}) {
    INFO(target);
    auto got = test::request(gate.port(), "GET", target, {{"X-API-Key", key}});
    REQUIRE(got.status == 200);
    // A raw read: the answer must end after its head, whatever Content-Length says.
    test::raw_connection c(gate.port());
    REQUIRE(c.send("HEAD " + target + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
                   "\r\nConnection: close\r\n\r\n"));
    const auto answer = c.read_until_close();
    CHECK(test::status_of(answer) == 200);
    CHECK_THAT(answer, Catch::Contains("Content-Length: " + std::to_string(got.body.size())));
    CHECK(body_of(answer).empty());
  }
  // Refusals to HEAD have no body either.
  test::raw_connection c(gate.port());
  REQUIRE(c.send("HEAD /api-tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const auto refused = c.read_until_close();
  CHECK(test::status_of(refused) == 401);
  CHECK(body_of(refused).empty());
}

TEST_CASE_METHOD(proxy_fixture, "a HEAD whose head is refused before it is parsed gets no body",
                 "[spelling][head]") {
  // README "Headers sent upstream": answers to HEAD, tokengate's own included, never carry a
  // body, also when the head is refused as malformed, too large or of another version.
  const std::string too_large(20 * 1024, 'v');
  const std::pair<std::string, unsigned> heads[]{
      {"HEAD /public/x HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
      {"HEAD /public/x HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
      {"HEAD /public/x HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"HEAD /public/x HTTP/1.1\r\nHost: x\r\nX: " + too_large + "\r\n\r\n", 431},
  };
  for (const auto& [head, status] : heads) {
    INFO(head.substr(0, 60));
    const auto answer = raw_exchange(gate.port(), head);
    CHECK(test::status_of(answer) == status);
    CHECK_THAT(answer, Catch::Contains("Content-Length: "));
    CHECK(body_of(answer).empty());
  }
  // Another method's refusal still says why in its body.
  const auto get = raw_exchange(gate.port(), "GET /public/x HTTP/2.0\r\nHost: x\r\n\r\n");
  CHECK(test::status_of(get) == 505);
  CHECK_THAT(body_of(get), Catch::Contains("only HTTP/1.0 and HTTP/1.1"));
  CHECK(upstream.requests().empty());
}

TEST_CASE_METHOD(proxy_fixture, "a second key or Host in another case is 400",
                 "[spelling][headers]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  for (const std::string& second : {"x-api-key: " + reader.value, std::string("X-API-KEY: tg_x")}) {
    INFO(second);
    const auto answer = raw_exchange(gate.port(), "GET /alerts/7 HTTP/1.1\r\nHost: x\r\n"
                                                  "X-API-Key: " +
                                                      reader.value + "\r\n" + second + "\r\n\r\n");
    CHECK(test::status_of(answer) == 400);
    CHECK_THAT(body_of(answer), Catch::Contains("more than one X-API-Key"));
  }
  const auto hosts =
      raw_exchange(gate.port(), "GET /public/x HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n");
  CHECK(test::status_of(hosts) == 400);
  CHECK(upstream.requests().empty());
}

TEST_CASE_METHOD(proxy_fixture, "a paging parameter given twice is 400", "[spelling][api]") {
  auto r = test::request(gate.port(), "GET", "/api-tokens?limit=1&limit=1000",
                         {{"X-API-Key", gate.admin_key()}});
  CHECK(r.status == 400);
  CHECK(r.message() == "query parameter \"limit\" is given more than once");
  r = test::request(gate.port(), "GET", "/api-tokens?cursor=&cursor=x",
                    {{"X-API-Key", gate.admin_key()}});
  CHECK(r.status == 400);
  CHECK(r.message() == "query parameter \"cursor\" is given more than once");
}
