#pragma once

#include "tokenapi/ip.hpp"

#include <catch2/catch.hpp>

#include <string_view>

namespace tokengate::test {

/// The address `text` names; fails the test (naming it) when it does not parse.
inline tokenapi::ip_address ip(std::string_view text) {
  auto a = tokenapi::ip_address::parse(text);
  INFO("address: " << text);
  REQUIRE(a.has_value());
  return *a;
}

} // namespace tokengate::test
