// One contract, four implementations: every case here runs against the in-memory store, the
// real RocksDB store in a temp dir, the PostgreSQL store on a throwaway cluster, and fleet mode's
// store (PostgreSQL, then a RocksDB replica).
#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace tokengate;
using test::digest_of;
using test::record;

TEMPLATE_TEST_CASE("a stored record is found by id and by digest", "[store]", test::memory_fixture,
                   test::rocksdb_fixture, test::pg_fixture, test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a1", 1, R"({"name":"ci"})")));

  auto by_id = f.store.get("a1");
  REQUIRE(by_id);
  REQUIRE(by_id->has_value());
  CHECK((*by_id)->payload == R"({"name":"ci"})");
  CHECK((*by_id)->value_digest == digest_of(1));
  CHECK_FALSE((*by_id)->last_used.has_value());

  auto by_digest = f.store.find(digest_of(1));
  REQUIRE(by_digest);
  REQUIRE(by_digest->has_value());
  CHECK((*by_digest)->id == "a1");

  CHECK_FALSE(f.store.get("zz").value().has_value());
  CHECK_FALSE(f.store.find(digest_of(9)).value().has_value());
}

TEMPLATE_TEST_CASE("replacing a record re-indexes its digest", "[store]", test::memory_fixture,
                   test::rocksdb_fixture, test::pg_fixture, test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  REQUIRE(f.store.put(record("a1", 2, "v2")));

  CHECK_FALSE(f.store.find(digest_of(1)).value().has_value());
  auto found = f.store.find(digest_of(2)).value();
  REQUIRE(found.has_value());
  CHECK(found->payload == "v2");
  CHECK(f.store.scan("", 10).value().size() == 1);
}

TEMPLATE_TEST_CASE("erase removes the record and its digest", "[store]", test::memory_fixture,
                   test::rocksdb_fixture, test::pg_fixture, test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a1", 1)));
  REQUIRE(f.store.put(record("b2", 2)));

  CHECK(f.store.erase("a1").value());
  CHECK_FALSE(f.store.erase("a1").value());
  CHECK_FALSE(f.store.get("a1").value().has_value());
  CHECK_FALSE(f.store.find(digest_of(1)).value().has_value());
  CHECK(f.store.get("b2").value().has_value());
}

TEMPLATE_TEST_CASE("scan pages through ids in order, each exactly once", "[store]",
                   test::memory_fixture, test::rocksdb_fixture, test::pg_fixture,
                   test::fleet_fixture) {
  TestType f;
  for (int i = 0; i < 25; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "id%02d", (i * 7) % 25); // inserted out of order
    REQUIRE(f.store.put(record(id, static_cast<std::uint8_t>(i))));
  }

  std::vector<std::string> seen;
  std::string cursor;
  for (;;) {
    auto page = f.store.scan(cursor, 10).value();
    for (auto& r : page)
      seen.push_back(r.id);
    if (page.size() < 10)
      break;
    cursor = page.back().id;
  }
  REQUIRE(seen.size() == 25);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 25);
  CHECK(seen.front() == "id00");
  CHECK(seen.back() == "id24");
  CHECK(f.store.scan("id24", 10).value().empty());
}

TEMPLATE_TEST_CASE("scan starts after a cursor that was deleted meanwhile", "[store]",
                   test::memory_fixture, test::rocksdb_fixture, test::pg_fixture,
                   test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a", 1)));
  REQUIRE(f.store.put(record("b", 2)));
  REQUIRE(f.store.put(record("c", 3)));
  REQUIRE(f.store.erase("b").value());

  auto page = f.store.scan("b", 10).value();
  REQUIRE(page.size() == 1);
  CHECK(page[0].id == "c");
}

TEMPLATE_TEST_CASE("last-use notes are read back and dropped for erased ids", "[store]",
                   test::memory_fixture, test::rocksdb_fixture, test::pg_fixture,
                   test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a", 1)));
  REQUIRE(f.store.put(record("b", 2)));
  REQUIRE(f.store.put(record("c", 3)));

  std::vector<store::usage> notes{{"a", 1'700'000'000}, {"c", 1'700'000'060}, {"gone", 5}};
  REQUIRE(f.store.write_last_used(notes));

  CHECK(f.store.get("a").value()->last_used == 1'700'000'000);
  CHECK_FALSE(f.store.get("b").value()->last_used.has_value());
  CHECK_FALSE(f.store.get("gone").value().has_value());
  auto page = f.store.scan("", 10).value();
  REQUIRE(page.size() == 3);
  CHECK(page[0].last_used == 1'700'000'000);
  CHECK_FALSE(page[1].last_used.has_value());
  CHECK(page[2].last_used == 1'700'000'060);

  // A later put (an update of the token) keeps its last use.
  REQUIRE(f.store.put(record("a", 7, "updated")));
  CHECK(f.store.get("a").value()->last_used == 1'700'000'000);
}

TEMPLATE_TEST_CASE("markers are set atomically with a put", "[store]", test::memory_fixture,
                   test::rocksdb_fixture, test::pg_fixture, test::fleet_fixture) {
  TestType f;
  CHECK_FALSE(f.store.has_marker("bootstrap:1").value());
  REQUIRE(f.store.put(record("a", 1), "bootstrap:1"));
  CHECK(f.store.has_marker("bootstrap:1").value());
  REQUIRE(f.store.erase("a").value());
  CHECK(f.store.has_marker("bootstrap:1").value());
  CHECK(f.store.flush());
}

TEMPLATE_TEST_CASE("put_many stores a batch, replacing and re-indexing as put does", "[store]",
                   test::memory_fixture, test::rocksdb_fixture, test::pg_fixture,
                   test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a", 1, "old")));
  std::vector<store::token_record> batch;
  batch.push_back(record("a", 2, "new"));
  for (std::uint8_t i = 10; i < 60; ++i)
    batch.push_back(record("n" + std::to_string(i), i));
  REQUIRE(f.store.put_many(batch));

  CHECK_FALSE(f.store.find(digest_of(1)).value().has_value());
  CHECK(f.store.find(digest_of(2)).value()->payload == "new");
  CHECK(f.store.find(digest_of(42)).value()->id == "n42");
  CHECK(f.store.scan("", 100).value().size() == 51);
}
