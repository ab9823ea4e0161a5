// TLS sessions and certificate reloads through POST /reload (README "TLS", "Live reload"): no
// TLS 1.2 session tickets, unchanged files kept, and a pair that fails to load reported.
#include "tests/integration/tls_fixture.hpp"

#include <catch2/catch.hpp>
#include <openssl/ssl.h>

using namespace tokengate;
using test::tls_fixture;

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("TLS 1.2 clients get no session ticket", "[tls]") {
  tls_fixture f;
  auto options = f.trusting();
  options.max_version = TLS1_2_VERSION;
  test::tls_client c(f.gate.port(), options);
  CHECK(c.version() == "TLSv1.2");
  CHECK_FALSE(c.has_ticket());
  CHECK(c.request("GET", "/public/x").status == 200);
}

TEST_CASE("a reload leaves a certificate whose files did not change as it is", "[tls][reload]") {
  tls_fixture f;
  f.gate.reload_with(test::example_routes());
  const auto r = test::request(f.gate.admin_port(), "POST", "/reload");
  CHECK(r.status == 200);
  CHECK(count_of(f.gate.log_text(), R"("msg":"TLS certificate loaded")") == 1);
  CHECK(test::tls_client(f.gate.port(), f.trusting()).request("GET", "/public/x").status == 200);
}

TEST_CASE("a reload whose certificate pair fails to load says so and counts as a failure",
          "[tls][reload]") {
  tls_fixture f({}, true);
  const auto next = f.ca.issue(f.dir.path(), "next", test::serial(0x2002));
  const auto other = f.ca.issue(f.dir.path(), "other", test::serial(0x3003));
  f.swap_secret("..v2", next.cert, other.key); // a key of another certificate
  f.gate.reload_with(test::example_routes());
  const auto r = test::request(f.gate.admin_port(), "POST", "/reload");
  CHECK(r.status == 422);
  const auto body = r.json().as_object();
  CHECK(body.at("result").as_string() == "applied");
  CHECK(body.at("certificates").as_string() == "failed");
  CHECK_THAT(std::string(body.at("certificateError").as_string()),
             Catch::Contains("does not match"));
  const auto metrics = test::request(f.gate.admin_port(), "GET", "/metrics").body;
  CHECK_THAT(metrics, Catch::Contains(R"(tokengate_config_reloads_total{result="failure"} 1)"));
  CHECK_THAT(metrics, Catch::Contains(R"(tokengate_config_reloads_total{result="success"} 0)"));
  // The previous pair is still served.
  CHECK(test::tls_client(f.gate.port(), f.trusting()).peer_serial() == "1001");
}
