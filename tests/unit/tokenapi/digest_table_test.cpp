#include "tokenapi/digest_table.hpp"

#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::tokenapi;

namespace {

// Digests by value: the table's values are indexes into `keys`.
std::vector<store::digest> keys;

struct key_of {
  const store::digest& operator()(std::uint32_t v) const noexcept { return keys[v]; }
};

// A digest whose first bytes (where the table finds its home) are `home`: many of them collide.
store::digest colliding(std::uint32_t home, std::uint8_t n) {
  store::digest d{};
  std::memcpy(d.data(), &home, sizeof home);
  d[20] = n;
  return d;
}

std::uint32_t add(const store::digest& d) {
  keys.push_back(d);
  return static_cast<std::uint32_t>(keys.size() - 1);
}

} // namespace

TEST_CASE("a digest table finds what it holds and nothing else", "[digest_table]") {
  keys.clear();
  digest_table<key_of> table;
  CHECK_FALSE(table.find(digest_of("absent")));
  CHECK_FALSE(table.erase(digest_of("absent")));
  for (int i = 0; i < 1000; ++i) {
    const auto v = add(digest_of("key " + std::to_string(i)));
    CHECK_FALSE(table.insert_or_assign(keys[v], v));
  }
  CHECK(table.size() == 1000);
  CHECK(table.capacity() >= 1250);
  for (std::uint32_t i = 0; i < 1000; ++i)
    CHECK(table.find(keys[i]) == i);
  CHECK_FALSE(table.find(digest_of("key 1000")));
}

TEST_CASE("a digest table replaces the value of a digest it holds", "[digest_table]") {
  keys.clear();
  digest_table<key_of> table;
  const auto first = add(digest_of("a"));
  const auto second = add(digest_of("a"));
  CHECK_FALSE(table.insert_or_assign(keys[first], first));
  CHECK(table.insert_or_assign(keys[second], second) == first);
  CHECK(table.size() == 1);
  CHECK(table.find(digest_of("a")) == second);
}

TEST_CASE("erasing from a run of colliding digests keeps the rest findable", "[digest_table]") {
  keys.clear();
  digest_table<key_of> table;
  table.reserve(64);
  // Three homes side by side, several digests each: one long probe run, also wrapping round
  // the end of the table (home 0xffffffff maps to its last slot).
  std::vector<std::uint32_t> values;
  for (std::uint32_t home : {0xffffffffu, 0u, 0x10000000u})
    for (std::uint8_t n = 0; n < 5; ++n) {
      values.push_back(add(colliding(home, n)));
      table.insert_or_assign(keys[values.back()], values.back());
    }
  std::mt19937 random(7);
  std::shuffle(values.begin(), values.end(), random);
  while (!values.empty()) {
    const auto gone = values.back();
    values.pop_back();
    CHECK(table.erase(keys[gone]) == gone);
    CHECK_FALSE(table.find(keys[gone]));
    for (auto v : values)
      CHECK(table.find(keys[v]) == v);
    CHECK(table.size() == values.size());
  }
}

TEST_CASE("a digest table matches a map over many random changes", "[digest_table]") {
  keys.clear();
  for (int i = 0; i < 400; ++i) // few distinct homes: long runs
    keys.push_back(
        colliding(static_cast<std::uint32_t>(i % 37) * 0x07000000u, static_cast<std::uint8_t>(i)));
  digest_table<key_of> table;
  std::map<std::uint32_t, bool> model;
  std::mt19937 random(11);
  for (int step = 0; step < 20000; ++step) {
    const auto v = static_cast<std::uint32_t>(random() % keys.size());
    if (random() % 3 == 0) {
      CHECK(table.erase(keys[v]).has_value() == (model.erase(v) > 0));
    } else {
      CHECK(table.insert_or_assign(keys[v], v).has_value() == (model.count(v) > 0));
      model[v] = true;
    }
  }
  CHECK(table.size() == model.size());
  for (std::uint32_t v = 0; v < keys.size(); ++v)
    CHECK(table.find(keys[v]).has_value() == (model.count(v) > 0));
  std::size_t seen = 0;
  table.for_each([&](std::uint32_t v) {
    CHECK(model.count(v) == 1);
    ++seen;
  });
  CHECK(seen == model.size());
}
