// The routes table: first match wins, methods narrow a route, the default route catches the
// rest, and an open route never covers a path outside its segments.
#include "proxy/path.hpp"
#include "proxy/route_table.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::permission;

namespace {

tokenapi::permission_set perms(std::initializer_list<permission> ps) {
  tokenapi::permission_set s;
  for (auto p : ps)
    s.insert(p);
  return s;
}

route open_route(std::string prefix) { return route{std::move(prefix), {}, true, {}}; }

// The table of the README's "Routes".
route_table product_table(std::optional<route> fallback = route{"/", {}, false, {}}) {
  return route_table(
      {
          open_route("/public"),
          route{"/alerts", {"GET", "HEAD"}, false, perms({permission::AlertRead})},
          route{"/alerts", {}, false, perms({permission::AlertModify})},
      },
      std::move(fallback));
}

// The route chosen for a raw request target, as the proxy does: normalise, then match.
const route* route_for(const route_table& t, std::string_view method, std::string_view target) {
  normalized_target n;
  REQUIRE(normalize_target(target, n).has_value());
  return t.match(method, n.path);
}

} // namespace

TEST_CASE("the first matching route wins", "[routes]") {
  const auto t = product_table();
  const auto* get = t.match("GET", "/alerts/7");
  REQUIRE(get != nullptr);
  CHECK(get == &t.routes()[1]);
  CHECK(get->permissions == perms({permission::AlertRead}));

  const route_table same_prefix({route{"/a", {}, false, perms({permission::RuleRead})},
                                 route{"/a", {}, false, perms({permission::RuleModify})}},
                                std::nullopt);
  const auto* first = same_prefix.match("GET", "/a/b");
  REQUIRE(first != nullptr);
  CHECK(first->permissions == perms({permission::RuleRead}));

  const route_table broad_first(
      {route{"/", {}, false, perms({permission::UserRead})}, open_route("/public")}, std::nullopt);
  const auto* broad = broad_first.match("GET", "/public/x");
  REQUIRE(broad != nullptr);
  CHECK_FALSE(broad->open);
}

TEST_CASE("a route whose methods do not fit falls through to a later one", "[routes]") {
  const auto t = product_table();
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "get"}) {
    INFO(m);
    const auto* r = t.match(m, "/alerts");
    REQUIRE(r != nullptr);
    CHECK(r == &t.routes()[2]);
    CHECK(r->permissions == perms({permission::AlertModify}));
  }
  CHECK(t.match("HEAD", "/alerts/") == &t.routes()[1]);
  CHECK(t.match("GET", "/alerts") == &t.routes()[1]);

  const route_table only_get({route{"/r", {"GET"}, false, {}}}, std::nullopt);
  CHECK(only_get.match("GET", "/r") != nullptr);
  CHECK(only_get.match("POST", "/r") == nullptr);
}

TEST_CASE("the default route applies when nothing matches", "[routes]") {
  const auto t = product_table(route{"/", {}, false, perms({permission::ResourceRead})});
  const auto* r = t.match("GET", "/other");
  REQUIRE(r != nullptr);
  CHECK_FALSE(r->open);
  CHECK(r->permissions == perms({permission::ResourceRead}));
  for (const auto& listed : t.routes())
    CHECK(r != &listed);
  CHECK(t.match("GET", "/") == r);
}

TEST_CASE("without a default route an unmatched request has no route", "[routes]") {
  const auto t = product_table(std::nullopt);
  CHECK(t.match("GET", "/other") == nullptr);
  CHECK(t.match("GET", "/") == nullptr);
  CHECK(t.match("GET", "/alerts") != nullptr);
  CHECK(route_table{}.match("GET", "/") == nullptr);
}

TEST_CASE("an open route covers only its own segments", "[routes][path]") {
  const auto t = product_table(std::nullopt);
  const auto* pub = t.match("GET", "/public/index.html");
  REQUIRE(pub != nullptr);
  CHECK(pub->open);
  CHECK(t.match("GET", "/public") == pub);

  CHECK(t.match("GET", "/publicx") == nullptr);
  CHECK(t.match("GET", "/publicity/x") == nullptr);

  for (const char* target : {"/public/../alerts", "/public/%2e%2e/alerts", "/public/.%2E/alerts",
                             "//public/../alerts/", "/public/./../alerts?x=1"}) {
    INFO(target);
    const auto* r = route_for(t, "GET", target);
    REQUIRE(r != nullptr);
    CHECK_FALSE(r->open);
    CHECK(r == &t.routes()[1]);
  }
  const auto* escaped = route_for(t, "GET", "/alerts/../public/x");
  REQUIRE(escaped != nullptr);
  CHECK(escaped->open);
}
