// Rotation with an overlap (README "Key lifecycle"), through the real sidecar and upstream: both
// values work as the same token until the overlap ends, the old one says so in X-Token-Rotated,
// and a second rotation or a delete ends it at once.
#include "tests/integration/lifecycle_support.hpp"

using namespace tokengate;
using test::eventually;
using test::lifecycle_fixture;
using test::request;

namespace {

struct rotated {
  std::string old_value;
  std::string new_value;
  boost::json::object answer;
};

rotated rotate(lifecycle_fixture& f, const std::string& id, const std::string& old_value,
               std::string_view body) {
  auto r = f.api("POST", "/api-tokens/" + id + "/rotate", body);
  INFO(r.body);
  REQUIRE(r.status == 200);
  auto o = r.json().as_object();
  return {old_value, std::string(o.at("value").as_string()), o};
}

} // namespace

TEST_CASE_METHOD(lifecycle_fixture,
                 "during a rotation's overlap both values work, the old one with X-Token-Rotated",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ci", {"AlertRead"});
  const auto r = rotate(*this, t.id, t.value, R"({"previousValueValidFor": 2})");
  REQUIRE(r.answer.contains("previousValueExpiresAt"));
  const std::string until(r.answer.at("previousValueExpiresAt").as_string());
  CHECK_FALSE(r.answer.contains("previousValueLastUsedAt"));

  auto with_new = get_with(r.new_value, "/alerts/1");
  CHECK(with_new.status == 200);
  CHECK_FALSE(with_new.header("X-Token-Rotated"));
  CHECK(upstream.last().header("X-Token-Id") == t.id);
  CHECK_FALSE(token(t.id).contains("previousValueLastUsedAt")); // the new value is not the old

  auto with_old = get_with(r.old_value, "/alerts/2");
  CHECK(with_old.status == 200);
  CHECK(with_old.header("X-Token-Rotated") == "expires=" + until);
  CHECK(upstream.last().header("X-Token-Id") == t.id);
  CHECK(upstream.last().header("X-Token-Permissions") == "AlertRead");
  const auto seen = token(t.id);
  CHECK(seen.at("previousValueExpiresAt").as_string() == until);
  CHECK(seen.contains("previousValueLastUsedAt"));
  CHECK(seen.contains("lastUsedAt"));

  // The old value's answers from the token API say so too.
  auto self = request(gate.port(), "GET", "/api-tokens/self", {{"X-API-Key", r.old_value}});
  CHECK(self.status == 200);
  CHECK(self.header("X-Token-Rotated") == "expires=" + until);

  CHECK(eventually([&] { return get_with(r.old_value, "/alerts/3").status == 401; }));
  CHECK(get_with(r.old_value, "/alerts/3").message() == "invalid API key");
  CHECK(get_with(r.new_value, "/alerts/4").status == 200);
  const auto after = token(t.id);
  CHECK_FALSE(after.contains("previousValueExpiresAt"));
  CHECK_FALSE(after.contains("previousValueLastUsedAt"));
}

TEST_CASE_METHOD(lifecycle_fixture, "a second rotation ends the previous overlap at once",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ci", {"AlertRead"});
  const auto first = rotate(*this, t.id, t.value, R"({"previousValueValidFor": 600})");
  CHECK(get_with(first.old_value, "/alerts/1").status == 200);

  const auto second = rotate(*this, t.id, first.new_value, R"({"previousValueValidFor": 600})");
  CHECK(get_with(first.old_value, "/alerts/1").status == 401);
  CHECK(get_with(second.old_value, "/alerts/1").status == 200);
  CHECK(get_with(second.new_value, "/alerts/1").status == 200);

  // Without a body: Panther's rotation, the old value fails at once.
  const auto third = rotate(*this, t.id, second.new_value, "");
  CHECK_FALSE(third.answer.contains("previousValueExpiresAt"));
  CHECK(get_with(second.old_value, "/alerts/1").status == 401);
  CHECK(get_with(third.old_value, "/alerts/1").status == 401);
  CHECK(get_with(third.new_value, "/alerts/1").status == 200);
  CHECK_FALSE(token(t.id).contains("previousValueExpiresAt"));

  // A JSON null, as some Panther clients send for "no body", is the same.
  const auto fourth = rotate(*this, t.id, third.new_value, "null");
  CHECK_FALSE(fourth.answer.contains("previousValueExpiresAt"));
  CHECK(get_with(third.new_value, "/alerts/1").status == 401);
  CHECK(get_with(fourth.new_value, "/alerts/1").status == 200);
}

TEST_CASE_METHOD(lifecycle_fixture, "deleting a token ends both of its values",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ci", {"AlertRead"});
  const auto r = rotate(*this, t.id, t.value, R"({"previousValueValidFor": 600})");
  REQUIRE(get_with(r.old_value, "/alerts/1").status == 200);
  REQUIRE(api("DELETE", "/api-tokens/" + t.id).status == 204);
  CHECK(get_with(r.old_value, "/alerts/1").status == 401);
  CHECK(get_with(r.new_value, "/alerts/1").status == 401);
}

TEST_CASE_METHOD(lifecycle_fixture,
                 "an update keeps the overlap, and the old value follows the token",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ci", {"AlertRead"});
  const auto r = rotate(*this, t.id, t.value, R"({"previousValueValidFor": 600})");
  REQUIRE(
      api("POST", "/api-tokens/" + t.id, R"({"name":"ci","permissions":["AlertModify"]})").status ==
      200);
  auto refused = get_with(r.old_value, "/alerts/1");
  CHECK(refused.status == 403);             // AlertRead is gone for both values
  CHECK(refused.header("X-Token-Rotated")); // a refusal tells of the replaced value too
  CHECK(request(gate.port(), "DELETE", "/alerts/1", {{"X-API-Key", r.old_value}}).status == 200);
  CHECK(upstream.last().header("X-Token-Permissions") == "AlertModify");
  CHECK(token(t.id).contains("previousValueExpiresAt"));
}

TEST_CASE_METHOD(lifecycle_fixture, "rotate's body is checked field by field",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ci", {"AlertRead"});
  const auto path = "/api-tokens/" + t.id + "/rotate";
  const std::pair<std::string_view, std::string_view> bad[]{
      {R"({"previousValueValidFor": -1})", "previousValueValidFor"},
      {R"({"previousValueValidFor": 604801})", "previousValueValidFor"},
      {R"({"previousValueValidFor": 1.5})", "previousValueValidFor"},
      {R"({"previousValueValidFor": "60"})", "previousValueValidFor"},
      {R"({"previousValueValidFor": 60, "previousValueValidFor": 61})", "duplicate"},
      {R"({"validFor": 60})", "validFor"},
      {R"([60])", "JSON object"},
      {R"({"previousValueValidFor": )", "JSON"},
  };
  for (const auto& [body, mentions] : bad) {
    INFO(body);
    auto r = api("POST", path, body);
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::Contains(std::string(mentions)));
  }
  CHECK(get_with(t.value, "/alerts/1").status == 200); // nothing was rotated
  auto most = api("POST", path, R"({"previousValueValidFor": 604800})");
  CHECK(most.status == 200);
}

TEST_CASE_METHOD(lifecycle_fixture,
                 "a replaced value may only read its own token: the token API refuses the rest",
                 "[lifecycle][rotation]") {
  const auto t = gate.create_token("ops", {"OrganizationAPITokenModify", "AlertRead"});
  const auto other = gate.create_token("other", {"AlertRead"});
  const auto r = rotate(*this, t.id, t.value, R"({"previousValueValidFor": 600})");
  const auto call = [&](std::string_view method, const std::string& target,
                        std::string_view body = {}) {
    return request(gate.port(), method, target, {{"X-API-Key", r.old_value}}, body);
  };
  CHECK(call("GET", "/api-tokens/self").status == 200);
  CHECK(call("GET", "/api-tokens/" + t.id).status == 200);

  const std::string self_rotate = "/api-tokens/self/rotate";
  const std::string body = R"({"name":"x","permissions":["AlertRead"]})";
  const std::tuple<std::string_view, std::string, std::string_view> refused[]{
      {"POST", self_rotate, R"({"previousValueValidFor": 604800})"},
      {"POST", self_rotate, ""},
      {"POST", "/api-tokens/" + t.id + "/rotate", ""},
      {"POST", "/api-tokens/" + t.id, body},
      {"POST", "/api-tokens", body},
      {"DELETE", "/api-tokens/" + t.id, ""},
      {"GET", "/api-tokens", ""},
      {"GET", "/api-tokens/" + other.id, ""},
  };
  for (const auto& [method, target, sent] : refused) {
    INFO(method << " " << target);
    auto answer = call(method, target, sent);
    CHECK(answer.status == 403);
    CHECK(answer.message() == "a replaced API key cannot manage tokens; use the current value");
    CHECK(answer.header("X-Token-Rotated"));
  }
  // Nothing changed: the current value still works, the old one still only in its overlap.
  CHECK(get_with(r.new_value, "/alerts/1").status == 200);
  CHECK(request(gate.port(), "GET", "/api-tokens/self", {{"X-API-Key", r.new_value}}).status ==
        200);
  const auto seen = token(t.id);
  CHECK(seen.at("name").as_string() == "ops");
  CHECK(seen.contains("previousValueExpiresAt"));
}
