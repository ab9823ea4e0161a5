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
    auto db = store::rocksdb_store::open(dir / "db").value();
    REQUIRE(db->put(record("a", 1, "first"), "m1"));
    REQUIRE(db->put(record("b", 2, "second")));
    std::vector<store::usage> notes{{"b", 42}};
    REQUIRE(db->write_last_used(notes));
    REQUIRE(db->erase("a").value());
    REQUIRE(db->put(record("b", 3, "second-rotated")));
  }
  auto db = store::rocksdb_store::open(dir / "db").value();
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
  REQUIRE(first);
  auto second = store::rocksdb_store::open(dir / "db");
  REQUIRE_FALSE(second);
  CHECK(second.error().code == store::errc::io_error);
  CHECK_THAT(second.error().message(),
             Catch::StartsWith("cannot open token store in " + (dir / "db").string() + ": "));
  CHECK_THAT(second.error().message(), Catch::Contains("LOCK"));
}

TEST_CASE("rocksdb store refuses a data directory it cannot create", "[store][rocksdb]") {
  test::temp_dir dir;
  std::ofstream(dir / "file") << "x";
  auto opened = store::rocksdb_store::open(dir / "file" / "db");
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == store::errc::io_error);
  CHECK_THAT(opened.error().message(),
             Catch::StartsWith("cannot create data directory " + (dir / "file" / "db").string()));
  // value() is for start-up code and tests: the same line as an exception.
  CHECK_THROWS_WITH(store::rocksdb_store::open(dir / "file" / "db").value(),
                    Catch::StartsWith("cannot create data directory"));
}
