#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

using namespace tokengate;
using test::digest_of;
using test::record;

TEST_CASE("rocksdb store keeps records, indexes and usage across a reopen", "[store][rocksdb]") {
  test::temp_dir dir;
  {
    auto db = store::rocksdb_store::open(dir / "db");
    REQUIRE(db->put(record("a", 1, "first"), "m1"));
    REQUIRE(db->put(record("b", 2, "second")));
    std::vector<store::usage> notes{{"b", 42}};
    REQUIRE(db->write_last_used(notes));
    REQUIRE(db->erase("a").value());
    REQUIRE(db->put(record("b", 3, "second-rotated")));
  }
  auto db = store::rocksdb_store::open(dir / "db");
  CHECK_FALSE(db->get("a").value().has_value());
  auto b = db->find(digest_of(3)).value();
  REQUIRE(b.has_value());
  CHECK(b->payload == "second-rotated");
  CHECK(b->last_used == 42);
  CHECK_FALSE(db->find(digest_of(2)).value().has_value());
  CHECK(db->has_marker("m1").value());
}

TEST_CASE("a second process cannot open a store that is in use", "[store][rocksdb]") {
  test::temp_dir dir;
  auto first = store::rocksdb_store::open(dir / "db");
  try {
    auto second = store::rocksdb_store::open(dir / "db");
    FAIL("the second open should have thrown");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot open token store in"));
    CHECK_THAT(e.what(), Catch::Contains("LOCK"));
  }
}

TEST_CASE("rocksdb store refuses a data directory it cannot create", "[store][rocksdb]") {
  test::temp_dir dir;
  std::ofstream(dir / "file") << "x";
  CHECK_THROWS_WITH(store::rocksdb_store::open(dir / "file" / "db"),
                    Catch::Contains("cannot create data directory"));
}
