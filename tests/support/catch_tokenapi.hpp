#pragma once

// Small values the domain tests share: the time every test world starts at, addresses,
// permission sets and fresh key values. Each fails the test (rather than returning junk) when
// its input does not parse.
#include "tests/support/catch_ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/rfc3339.hpp"
#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <initializer_list>
#include <string>

namespace tokengate::test {

/// 2026-11-28T02:41:26Z: the time every test world starts at.
inline const tokenapi::timestamp t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} +
                                      std::chrono::hours(2) + std::chrono::minutes(41) +
                                      std::chrono::seconds(26);

/// The set of the permissions listed.
inline tokenapi::permission_set set_of(std::initializer_list<tokenapi::permission> ps) {
  tokenapi::permission_set s;
  for (auto p : ps)
    s.insert(p);
  return s;
}

/// A freshly generated key value; fails the test when generation fails.
inline std::string new_value() {
  auto v = tokenapi::generate_value();
  REQUIRE(v.has_value());
  return *v;
}

} // namespace tokengate::test
