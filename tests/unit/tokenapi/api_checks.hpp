#pragma once

// Reading /api-tokens answers in the API tests: ids, pages, actors and times.
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace tokengate::test {

inline std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o)
    keys.insert(std::string(kv.key()));
  return keys;
}

// "t7" and the like. (Not `"t" + std::to_string(i)`: GCC 12 warns falsely on it, -Wrestrict.)
inline std::string numbered(std::string_view prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

inline std::string at(tokenapi::timestamp t) { return tokenapi::format_rfc3339(t); }

inline std::string path_of(const issued_token& t) { return "/api-tokens/" + t.id; }
inline std::string path_of(const reply& r) { return "/api-tokens/" + r.id(); }

inline json::value actor(std::string_view id, std::string_view type) {
  return json::object{{"id", id}, {"type", type}};
}

inline const json::array& results_of(const reply& r) {
  REQUIRE(r.status == 200);
  REQUIRE(r.object().contains("results"));
  REQUIRE(r.object().at("results").is_array());
  return r.object().at("results").get_array();
}

// The ids on the page, checking that no entry shows a value.
inline std::vector<std::string> ids_on(const reply& page) {
  std::vector<std::string> ids;
  for (const auto& t : results_of(page)) {
    CHECK_FALSE(t.as_object().contains("value"));
    ids.emplace_back(t.as_object().at("id").as_string());
  }
  return ids;
}

} // namespace tokengate::test
