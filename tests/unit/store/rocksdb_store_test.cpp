#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
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

namespace {

// The size of the largest file in `dir` (RocksDB's write-ahead log, in a fresh store).
std::uintmax_t largest_file(const std::filesystem::path& dir) {
  std::uintmax_t most = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".log")
      most = std::max(most, e.file_size());
  return most;
}

} // namespace

TEST_CASE("a write the disk refuses fails with RocksDB's reason, later writes too, and the store "
          "closes without a crash and keeps what it took",
          "[store][rocksdb]") {
  test::temp_dir dir;
  {
    auto db = store::rocksdb_store::open(dir / "db").value();
    REQUIRE(db->put(record("a", 1, "first")));
    CHECK(db->last_error().empty());

    // A file-size limit at the log's size: the next append fails as on a full disk (EFBIG).
    rlimit before{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = before;
    limited.rlim_cur = largest_file(dir / "db");
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    store::replica_batch batch;
    batch.puts.push_back(record("b", 2, std::string(1 << 16, 'x')));
    auto refused = db->apply(batch);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &before) == 0);
    std::signal(SIGXFSZ, old_handler);

    REQUIRE_FALSE(refused);
    CHECK(refused.error() == store::errc::io_error);
    CHECK(db->last_error().find("IO error") != std::string::npos);
    CHECK(db->last_error().find("File too large") != std::string::npos);
    // RocksDB takes no write after a failed one until resumed; after a failed write to its
    // log, it cannot be (this RocksDB): the failure is told again, with its reason.
    CHECK_FALSE(db->put(record("c", 3, "third")));
    if (auto resumed = db->resume(); !resumed)
      CHECK_FALSE(db->last_error().empty());
    CHECK(db->get("a").value()->payload == "first"); // reads go on
  }
  // The store above was left without a crash; a copy of its directory holds what it took.
  std::filesystem::copy(dir / "db", dir / "copy", std::filesystem::copy_options::recursive);
  std::filesystem::remove(dir / "copy" / "LOCK");
  auto copy = store::rocksdb_store::open(dir / "copy").value();
  CHECK(copy->get("a").value()->payload == "first");
  CHECK_FALSE(copy->get("b").value().has_value());
}
