#pragma once

#include "proxy/config.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/sidecar.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>

namespace tokengate::test {

/// The routes of the README's example ("Routes").
inline proxy::config example_routes(proxy::config c = test_settings()) {
  using tokenapi::permission;
  tokenapi::permission_set read, modify;
  read.insert(permission::AlertRead);
  modify.insert(permission::AlertModify);
  c.routes = {
      {"/public", {}, true, {}},
      {"/alerts", {"GET", "HEAD"}, false, read},
      {"/alerts", {}, false, modify},
  };
  c.default_route = proxy::route{"/", {}, false, {}};
  return c;
}

/// A real upstream and the real sidecar in front of it.
struct proxy_fixture {
  explicit proxy_fixture(proxy::config c = example_routes())
      : gate(upstream.port(), std::move(c)) {}

  http_response get(std::string_view target, const header_list& headers = {}) {
    return request(gate.port(), "GET", target, headers);
  }
  http_response get_with(const std::string& key, std::string_view target,
                         header_list headers = {}) {
    headers.emplace_back("X-API-Key", key);
    return request(gate.port(), "GET", target, headers);
  }

  test_upstream upstream;
  sidecar gate;
};

} // namespace tokengate::test
