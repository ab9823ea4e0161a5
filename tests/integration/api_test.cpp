// The token API over HTTP, against the real server on loopback (README "The token API").
#include "tests/support/http_client.hpp"
#include "tests/support/sidecar.hpp"
#include "tests/support/test_upstream.hpp"
#include "tokenapi/rfc3339.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

using namespace tokengate;
using test::http_response;

namespace {

struct api_fixture {
  test::test_upstream upstream;
  test::sidecar gate{upstream.port(), test::test_settings()};

  http_response call(std::string_view method, std::string_view target,
                     std::optional<std::string> key, std::string_view body = {}) {
    test::header_list headers;
    if (key)
      headers.emplace_back("X-API-Key", *key);
    if (!body.empty())
      headers.emplace_back("Content-Type", "application/json");
    return test::request(gate.port(), method, target, headers, body);
  }
  http_response admin(std::string_view method, std::string_view target,
                      std::string_view body = {}) {
    return call(method, target, gate.admin_key(), body);
  }
};

const std::regex rfc3339_utc(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)");

std::string field(const http_response& r, std::string_view name) {
  return std::string(r.json().as_object().at(name).as_string());
}

void check_error(const http_response& r, unsigned status, std::string_view mentions = {}) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK_FALSE(r.message().empty());
  if (!mentions.empty())
    CHECK_THAT(r.message(), Catch::Contains(std::string(mentions)));
}

} // namespace

TEST_CASE_METHOD(api_fixture, "create answers the token with its value, in the OpenAPI shape",
                 "[api]") {
  auto r = admin(
      "POST", "/api-tokens",
      R"({"name":"ci","permissions":["AlertRead","RuleRead"],"allowedCIDRBlocks":["127.0.0.1","10.0.0.0/8"]})");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  const auto doc = r.json();
  const auto& o = doc.as_object();
  const std::set<std::string> keys = [&] {
    std::set<std::string> k;
    for (const auto& [key, v] : o)
      k.emplace(key);
    return k;
  }();
  // Unset optional timestamps (expiresAt, lastUsedAt, rotatedAt) are left out.
  CHECK(keys == std::set<std::string>{"allowedCIDRBlocks", "createdAt", "createdBy", "id", "name",
                                      "permissions", "updatedAt", "updatedBy", "value"});
  CHECK(o.at("name") == "ci");
  CHECK(o.at("permissions") == boost::json::array{"AlertRead", "RuleRead"});
  CHECK(o.at("allowedCIDRBlocks") == boost::json::array{"127.0.0.1/32", "10.0.0.0/8"});
  CHECK(std::regex_match(std::string(o.at("createdAt").as_string()), rfc3339_utc));
  CHECK(o.at("createdAt") == o.at("updatedAt"));
  CHECK(o.at("createdBy").at("type") == "api-token");
  CHECK(o.at("createdBy") == o.at("updatedBy"));
  CHECK(std::regex_match(
      std::string(o.at("id").as_string()),
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  const std::string value(o.at("value").as_string());
  CHECK(value.starts_with("tg_"));

  // The new value works at once; get and list never show it.
  auto self = call("GET", "/api-tokens/self", value);
  REQUIRE(self.status == 200);
  CHECK_FALSE(self.json().as_object().contains("value"));
  CHECK(self.body.find(value) == std::string::npos);
  auto got = admin("GET", "/api-tokens/" + field(r, "id"));
  REQUIRE(got.status == 200);
  CHECK_FALSE(got.json().as_object().contains("value"));
  auto list = admin("GET", "/api-tokens");
  REQUIRE(list.status == 200);
  CHECK(list.body.find(value) == std::string::npos);
  CHECK(list.body.find("\"value\"") == std::string::npos);
}

TEST_CASE_METHOD(api_fixture, "missing, unknown, malformed and expired keys are 401", "[api]") {
  check_error(call("GET", "/api-tokens", std::nullopt), 401, "X-API-Key");
  check_error(call("GET", "/api-tokens", "tg_not-a-key"), 401);
  // A well-formed value that names no token.
  auto created = gate.create_token("soon deleted", {});
  REQUIRE(admin("DELETE", "/api-tokens/" + created.id).status == 204);
  check_error(call("GET", "/api-tokens/self", created.value), 401);

  const auto in_two_seconds =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
      std::chrono::seconds(2);
  const auto expiry = tokenapi::format_rfc3339(in_two_seconds);
  auto expiring = admin("POST", "/api-tokens",
                        R"({"name":"short","permissions":[],"expiresAt":")" + expiry + "\"}");
  REQUIRE(expiring.status == 200);
  CHECK(field(expiring, "expiresAt") == expiry);
  const auto value = field(expiring, "value");
  CHECK(call("GET", "/api-tokens/self", value).status == 200);
  std::this_thread::sleep_until(in_two_seconds + std::chrono::milliseconds(200));
  check_error(call("GET", "/api-tokens/self", value), 401, "expired");
}

TEST_CASE_METHOD(api_fixture, "permissions, addresses and privilege escalation are 403", "[api]") {
  auto reader = gate.create_token("reader", {"OrganizationAPITokenRead", "AlertRead"});
  auto modifier = gate.create_token("modifier", {"OrganizationAPITokenModify", "AlertRead"});
  auto nobody = gate.create_token("nobody", {});
  auto elsewhere = gate.create_token("elsewhere", {"OrganizationAPITokenModify"}, {"10.0.0.0/8"});

  CHECK(call("GET", "/api-tokens", reader.value).status == 200);
  CHECK(call("GET", "/api-tokens/" + modifier.id, reader.value).status == 200);
  check_error(call("POST", "/api-tokens", reader.value, R"({"name":"x","permissions":[]})"), 403,
              "OrganizationAPITokenModify");
  check_error(call("DELETE", "/api-tokens/" + nobody.id, reader.value), 403);
  check_error(call("GET", "/api-tokens", nobody.value), 403, "OrganizationAPITokenRead");
  check_error(call("GET", "/api-tokens/" + reader.id, nobody.value), 403);
  check_error(call("GET", "/api-tokens", elsewhere.value), 403, "127.0.0.1");

  // A caller can never grant what it does not hold.
  check_error(call("POST", "/api-tokens", modifier.value,
                   R"({"name":"x","permissions":["AlertRead","UserModify"]})"),
              403, "UserModify");
  check_error(call("POST", "/api-tokens/" + nobody.id, modifier.value,
                   R"({"name":"x","permissions":["PolicyModify"]})"),
              403, "PolicyModify");
  // Nor rotate a token holding more than itself (it would receive its value).
  check_error(call("POST", "/api-tokens/" + reader.id + "/rotate", modifier.value), 403,
              "OrganizationAPITokenRead");
  auto granted =
      call("POST", "/api-tokens", modifier.value, R"({"name":"x","permissions":["AlertRead"]})");
  CHECK(granted.status == 200);
}

TEST_CASE_METHOD(api_fixture, "every bad body is a 400 that names the problem", "[api]") {
  const std::pair<std::string, std::string> cases[] = {
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"permissions":[]})", "\"name\""},
      {R"({"name":"x"})", "\"permissions\""},
      {R"({"name":5,"permissions":[]})", "\"name\""},
      {R"({"name":"x","permissions":"AlertRead"})", "\"permissions\""},
      {R"({"name":"x","permissions":[7]})", "\"permissions\""},
      {R"({"name":"x","permissions":["AlertRaed"]})", "AlertRaed"},
      {R"({"name":"x","permissions":[],"allowedCIDRBlocks":["10.0.0.0/33"]})", "10.0.0.0/33"},
      {R"({"name":"x","permissions":[],"allowedCIDRBlocks":"10.0.0.0/8"})", "allowedCIDRBlocks"},
      {R"({"name":"x","permissions":[],"expiresAt":"2001-01-01T00:00:00Z"})", "future"},
      {R"({"name":"x","permissions":[],"expiresAt":"tomorrow"})", "RFC 3339"},
      {R"({"name":"x","permissions":[],"allowedCidrBlocks":[]})", "allowedCidrBlocks"},
  };
  for (const auto& [body, mentions] : cases) {
    INFO(body);
    check_error(admin("POST", "/api-tokens", body), 400, mentions);
  }
  auto t = gate.create_token("t", {});
  check_error(admin("POST", "/api-tokens/" + t.id, R"({"name":"","permissions":[]})"), 400, "name");
  // Nothing was created by the refused calls.
  auto list = admin("GET", "/api-tokens");
  CHECK(list.json().as_object().at("results").as_array().size() == 2);
}

TEST_CASE_METHOD(api_fixture, "unknown ids are 404, wrong methods 405, big bodies 413", "[api]") {
  check_error(admin("GET", "/api-tokens/00000000-0000-4000-8000-000000000000"), 404);
  check_error(admin("DELETE", "/api-tokens/not-an-id"), 404);
  check_error(admin("POST", "/api-tokens/00000000-0000-4000-8000-000000000000/rotate"), 404);
  check_error(admin("GET", "/api-tokens/a/b/c"), 404);

  auto put = admin("PUT", "/api-tokens");
  check_error(put, 405);
  CHECK(put.header("Allow") == "GET, HEAD, POST");
  auto patch = admin("PATCH", "/api-tokens/self");
  check_error(patch, 405);
  CHECK(patch.header("Allow") == "GET, HEAD, POST, DELETE");
  auto get_rotate = admin("GET", "/api-tokens/self/rotate");
  check_error(get_rotate, 405);
  CHECK(get_rotate.header("Allow") == "POST");

  const std::string big(gate.settings().limits.max_admin_body_bytes + 1, ' ');
  check_error(admin("POST", "/api-tokens", big), 413);

  // Checked from Content-Length before reading (README "Limits"): the head alone is answered,
  // and the connection closes, long before idle_timeout_ms (60 s) would end a wait for it.
  const auto limit = gate.settings().limits.max_admin_body_bytes;
  REQUIRE(limit == 65536);
  test::raw_connection announced(gate.port());
  announced.send("POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gate.admin_key() +
                 "\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(limit + 1) + "\r\n\r\n");
  const auto unread = announced.read_until("}", std::chrono::seconds(2));
  CHECK(test::status_of(unread) == 413);
  CHECK_THAT(unread, Catch::EndsWith(R"({"message":"request body is larger than 65536 bytes"})"));
  CHECK(announced.closed_within(std::chrono::seconds(2)));

  // Chunked bodies count too: refused once past the limit.
  test::raw_connection raw(gate.port());
  std::string chunked = "POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gate.admin_key() +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i)
    chunked += "1000\r\n" + std::string(0x1000, ' ') + "\r\n";
  raw.send(chunked);
  CHECK(test::status_of(raw.read_until("}")) == 413);

  // Chunk extensions carry nothing the API reads: past 16 KiB in all they are refused.
  test::raw_connection extended(gate.port());
  extended.send("POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gate.admin_key() +
                "\r\nTransfer-Encoding: chunked\r\n\r\n2;" + std::string(17 * 1024, 'e') +
                "\r\n{}\r\n0\r\n\r\n");
  const auto refused = extended.read_until("}");
  CHECK(test::status_of(refused) == 400);
  CHECK(refused.find(R"({"message":"chunk extensions (16 KiB in all) or trailers (16 KiB, 100 )"
                     R"(fields) too long"})") != std::string::npos);
}

TEST_CASE_METHOD(api_fixture, "self works for get, update, rotate and delete", "[api]") {
  auto plain = gate.create_token("plain", {});
  // Any valid token may read and rotate itself.
  auto me = call("GET", "/api-tokens/self", plain.value);
  REQUIRE(me.status == 200);
  CHECK(field(me, "id") == plain.id);
  auto rotated = call("POST", "/api-tokens/self/rotate", plain.value);
  REQUIRE(rotated.status == 200);
  const auto new_value = field(rotated, "value");
  CHECK(new_value != plain.value);
  CHECK(std::regex_match(field(rotated, "rotatedAt"), rfc3339_utc));
  // The old value fails from the moment the answer is sent; the new one works at once.
  check_error(call("GET", "/api-tokens/self", plain.value), 401);
  CHECK(call("GET", "/api-tokens/self", new_value).status == 200);
  // Update and delete of self need OrganizationAPITokenModify.
  check_error(call("POST", "/api-tokens/self", new_value, R"({"name":"p","permissions":[]})"), 403);
  check_error(call("DELETE", "/api-tokens/self", new_value), 403);

  auto manager = gate.create_token("manager", {"OrganizationAPITokenModify"});
  auto updated = call(
      "POST", "/api-tokens/self", manager.value,
      R"({"name":"renamed","permissions":["OrganizationAPITokenModify"],"allowedCIDRBlocks":["127.0.0.0/8"]})");
  REQUIRE(updated.status == 200);
  CHECK(field(updated, "name") == "renamed");
  CHECK(updated.json().as_object().at("allowedCIDRBlocks") == boost::json::array{"127.0.0.0/8"});
  CHECK(call("DELETE", "/api-tokens/self", manager.value).status == 204);
  check_error(call("GET", "/api-tokens/self", manager.value), 401);
}

TEST_CASE_METHOD(api_fixture, "delete and rotate by id take effect at once", "[api]") {
  auto t = gate.create_token("t", {"AlertRead"});
  CHECK(call("GET", "/api-tokens/self", t.value).status == 200);
  auto rotated = admin("POST", "/api-tokens/" + t.id + "/rotate");
  REQUIRE(rotated.status == 200);
  check_error(call("GET", "/api-tokens/self", t.value), 401);
  const auto value = field(rotated, "value");
  CHECK(call("GET", "/api-tokens/self", value).status == 200);
  auto deleted = admin("DELETE", "/api-tokens/" + t.id);
  CHECK(deleted.status == 204);
  CHECK(deleted.body.empty());
  check_error(call("GET", "/api-tokens/self", value), 401);
  check_error(admin("GET", "/api-tokens/" + t.id), 404);
}

TEST_CASE_METHOD(api_fixture, "update replaces the token, and expiresAt stays unless given",
                 "[api]") {
  const auto later = tokenapi::format_rfc3339(
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
      std::chrono::hours(24));
  auto created = admin(
      "POST", "/api-tokens",
      R"({"name":"a","permissions":["AlertRead"],"allowedCIDRBlocks":["10.0.0.0/8"],"expiresAt":")" +
          later + "\"}");
  REQUIRE(created.status == 200);
  const auto id = field(created, "id");
  auto updated = admin("POST", "/api-tokens/" + id, R"({"name":"b","permissions":["RuleRead"]})");
  REQUIRE(updated.status == 200);
  const auto doc = updated.json();
  const auto& o = doc.as_object();
  CHECK(o.at("name") == "b");
  CHECK(o.at("permissions") == boost::json::array{"RuleRead"});
  CHECK(o.at("allowedCIDRBlocks").as_array().empty());
  CHECK(o.at("expiresAt").as_string() == later);
  CHECK(o.at("createdAt") == created.json().as_object().at("createdAt"));
  auto cleared = admin("POST", "/api-tokens/" + id,
                       R"({"name":"b","permissions":["RuleRead"],"expiresAt":null})");
  REQUIRE(cleared.status == 200);
  CHECK_FALSE(cleared.json().as_object().contains("expiresAt"));
}

TEST_CASE_METHOD(api_fixture, "lastUsedAt appears once a token has been used", "[api]") {
  auto t = gate.create_token("t", {});
  auto before = admin("GET", "/api-tokens/" + t.id);
  CHECK_FALSE(before.json().as_object().contains("lastUsedAt"));
  REQUIRE(call("GET", "/api-tokens/self", t.value).status == 200);
  auto after = admin("GET", "/api-tokens/" + t.id);
  REQUIRE(after.json().as_object().contains("lastUsedAt"));
  CHECK(std::regex_match(field(after, "lastUsedAt"), rfc3339_utc));
}

TEST_CASE_METHOD(api_fixture, "paging lists every token exactly once", "[api][paging]") {
  // 2,500 tokens besides the bootstrap one, created over a few connections at once.
  std::vector<std::thread> creators;
  for (int c = 0; c < 4; ++c)
    creators.emplace_back([&, c] {
      test::http_client client(gate.port());
      for (int i = c; i < 2500; i += 4) {
        auto r = client.request("POST", "/api-tokens", {{"X-API-Key", gate.admin_key()}},
                                R"({"name":"t)" + std::to_string(i) + R"(","permissions":[]})");
        if (r.status != 200)
          throw std::runtime_error("create failed: " + r.body);
      }
    });
  for (auto& t : creators)
    t.join();

  std::set<std::string> seen;
  std::size_t listed = 0;
  std::string target = "/api-tokens?limit=1000";
  int pages = 0;
  for (;;) {
    auto page = admin("GET", target);
    REQUIRE(page.status == 200);
    const auto doc = page.json();
    const auto& o = doc.as_object();
    for (const auto& t : o.at("results").as_array()) {
      seen.emplace(t.at("id").as_string());
      ++listed;
    }
    ++pages;
    if (!o.contains("next"))
      break;
    target = "/api-tokens?limit=1000&cursor=" + std::string(o.at("next").as_string());
  }
  CHECK(pages == 3);
  CHECK(listed == 2501);
  CHECK(seen.size() == 2501);

  check_error(admin("GET", "/api-tokens?limit=0"), 400, "limit");
  check_error(admin("GET", "/api-tokens?limit=1001"), 400, "limit");
  check_error(admin("GET", "/api-tokens?limit=ten"), 400, "limit");
  check_error(admin("GET", "/api-tokens?cursor=bogus!"), 400, "cursor");
  auto small = admin("GET", "/api-tokens");
  CHECK(small.json().as_object().at("results").as_array().size() == 100);
}

TEST_CASE_METHOD(api_fixture, "the access log names the caller, never a key", "[api][log]") {
  auto t = gate.create_token("t", {});
  REQUIRE(call("GET", "/api-tokens/self", t.value).status == 200);
  REQUIRE(call("GET", "/api-tokens/self", "tg_wrong").status == 401);
  const auto log = gate.log_text_once(R"("path":"/api-tokens/self","status":401)");
  CHECK(log.find(t.value) == std::string::npos);
  CHECK(log.find(gate.admin_key()) == std::string::npos);
  CHECK(log.find("\"token_id\":\"" + t.id + "\"") != std::string::npos);
  CHECK(log.find("\"path\":\"/api-tokens/self\"") != std::string::npos);
}
