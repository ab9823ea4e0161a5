#pragma once

// Helpers of the key-lifecycle tests (README "Key lifecycle"): the token API as the admin, and
// waiting on a condition rather than on a clock.
#include "tests/integration/proxy_fixture.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <thread>

namespace tokengate::test {

struct lifecycle_fixture : proxy_fixture {
  using proxy_fixture::proxy_fixture;

  http_response api(std::string_view method, std::string_view target, std::string_view body = {}) {
    header_list headers{{"X-API-Key", gate.admin_key()}};
    if (!body.empty())
      headers.emplace_back("Content-Type", "application/json");
    return request(gate.port(), method, target, headers, body);
  }
  /// The token's JSON as GET /api-tokens/{id} answers it.
  boost::json::object token(const std::string& id) {
    auto r = api("GET", "/api-tokens/" + id);
    REQUIRE(r.status == 200);
    return r.json().as_object();
  }
  /// Creates a token from a whole JSON body; {id, value}.
  sidecar::created create(std::string_view body) {
    auto r = api("POST", "/api-tokens", body);
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto o = r.json().as_object();
    return {std::string(o.at("id").as_string()), std::string(o.at("value").as_string())};
  }
};

/// Polls `done` every 50 ms for up to `limit`; whether it became true.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

} // namespace tokengate::test
