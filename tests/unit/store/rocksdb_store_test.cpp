#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

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

namespace {

/// What a store reports, collected for a test.
struct reports {
  std::mutex mutex;
  std::vector<std::pair<bool, std::string>> lines;

  store::store_diagnostics sink() {
    return [this](bool error, std::string_view message) {
      std::lock_guard lock(mutex);
      lines.emplace_back(error, std::string(message));
    };
  }
  bool any(bool error, std::string_view part) {
    std::lock_guard lock(mutex);
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) {
      return l.first == error && l.second.find(part) != std::string::npos;
    });
  }
};

/// Runs `write` with the process' file-size limit at `limit` bytes: a file write past it fails
/// as on a full disk (EFBIG), without a signal.
template <class Write> auto with_file_size_limit(std::uintmax_t limit, Write write) {
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = before;
  limited.rlim_cur = limit;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  auto result = write();
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &before) == 0);
  std::signal(SIGXFSZ, old_handler);
  return result;
}

} // namespace

TEST_CASE("a write the disk refuses fails with RocksDB's reason, in the report too, later writes "
          "too, and the store closes without a crash and keeps what it took",
          "[store][rocksdb]") {
  test::temp_dir dir;
  reports said;
  {
    auto db = store::rocksdb_store::open(dir / "db", said.sink()).value();
    REQUIRE(db->put(record("a", 1, "first")));
    CHECK(db->last_error().empty());

    // A file-size limit at the log's size: the next append fails as on a full disk.
    store::replica_batch batch;
    batch.puts.push_back(record("b", 2, std::string(1 << 16, 'x')));
    auto refused = with_file_size_limit(largest_file(dir / "db"), [&] { return db->apply(batch); });
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == store::errc::io_error);
    CHECK(db->last_error().find("IO error") != std::string::npos);
    CHECK(db->last_error().find("File too large") != std::string::npos);
    CHECK(said.any(true, "a write failed, and the store takes none until it can be resumed: "
                         "IO error"));
    // RocksDB takes no write after a failed one until it is resumed. The store tries from a
    // write a second after the failure; a failed write to the log (not a full disk: the
    // end-to-end test "a full disk ..." has that one) this RocksDB cannot resume from.
    CHECK_FALSE(db->put(record("c", 3, "third")));
    CHECK(db->get("a").value()->payload == "first"); // reads go on
    // A stop flushes nothing now: RocksDB's Debian build aborts on a sync of a failed log.
    CHECK_FALSE(db->flush());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    CHECK_FALSE(db->put(record("c", 3, "third")));
    CHECK(db->last_error().find("File too large") != std::string::npos);
  }
  // No LOG file of RocksDB's own in the data directory: its messages went to the report.
  CHECK_FALSE(std::filesystem::exists(dir / "db" / "LOG"));
  CHECK(said.any(false, "Background IO error"));
  // The store above was left without a crash; a copy of its directory holds what it took.
  std::filesystem::copy(dir / "db", dir / "copy", std::filesystem::copy_options::recursive);
  std::filesystem::remove(dir / "copy" / "LOCK");
  auto db = store::rocksdb_store::open(dir / "copy").value();
  CHECK(db->get("a").value()->payload == "first");
  CHECK_FALSE(db->get("b").value().has_value());
  CHECK_FALSE(db->get("c").value().has_value());
}

TEST_CASE("a store that lost its CURRENT file is refused, never replaced by an empty one",
          "[store][rocksdb]") {
  test::temp_dir dir;
  {
    auto db = store::rocksdb_store::open(dir / "db").value();
    REQUIRE(db->put(record("a", 1, "first")));
  } // closed: its records are in a table file
  // CURRENT lost, and the log too (RocksDB itself refuses a new store beside a log).
  std::filesystem::remove(dir / "db" / "CURRENT");
  for (const auto& e : std::filesystem::directory_iterator(dir / "db"))
    if (e.path().extension() == ".log")
      std::filesystem::remove(e.path());
  std::vector<std::filesystem::path> before;
  for (const auto& e : std::filesystem::directory_iterator(dir / "db"))
    before.push_back(e.path());
  auto opened = store::rocksdb_store::open(dir / "db");
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == store::errc::corruption);
  CHECK(opened.error().message() ==
        "cannot open token store in " + (dir / "db").string() +
            ": it holds a store's files but no CURRENT file; restore the directory from a "
            "backup (a new store is never made over them)");
  for (const auto& p : before) // nothing was deleted
    CHECK(std::filesystem::exists(p));
  // A directory with other files only (a volume's lost+found) is a new store's.
  std::filesystem::create_directories(dir / "fresh" / "lost+found");
  CHECK(store::rocksdb_store::open(dir / "fresh"));
}

namespace {

/// A copy of the open store `db` in `dir`/`copy`, as a crash would leave it: its records in the
/// write-ahead log alone. Returns the log's path.
std::filesystem::path crash_copy(const std::filesystem::path& dir) {
  std::filesystem::copy(dir / "db", dir / "copy", std::filesystem::copy_options::recursive);
  std::filesystem::remove(dir / "copy" / "LOCK");
  for (const auto& e : std::filesystem::directory_iterator(dir / "copy"))
    if (e.path().extension() == ".log" && e.file_size() > 0)
      return e.path();
  FAIL("no write-ahead log in the copy");
  return {};
}

} // namespace

TEST_CASE("a write-ahead log damaged before its end stops the open, and one cut short at its end, "
          "as a crash leaves it, does not",
          "[store][rocksdb]") {
  test::temp_dir dir;
  auto db = store::rocksdb_store::open(dir / "db").value();
  for (int i = 0; i < 40; ++i)
    REQUIRE(db->put(record("t" + std::to_string(100 + i), static_cast<std::uint8_t>(i),
                           std::string(200, 'p'))));

  SECTION("a byte changed in the middle") {
    const auto log = crash_copy(dir.path());
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(std::filesystem::file_size(log) / 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(log) / 2));
    f.put(static_cast<char>(c ^ 0x5a));
    f.close();
    auto opened = store::rocksdb_store::open(dir / "copy");
    REQUIRE_FALSE(opened);
    CHECK(opened.error().code == store::errc::corruption);
    CHECK_THAT(opened.error().message(),
               Catch::StartsWith("cannot open token store in " + (dir / "copy").string() +
                                 ": Corruption: "));
    // The way out the README gives: the log moved aside, the store opens without its changes.
    std::filesystem::rename(log, dir / "damaged.log");
    auto without = store::rocksdb_store::open(dir / "copy").value();
    CHECK_FALSE(without->get("t100").value().has_value());
  }
  SECTION("the last record cut short") {
    const auto log = crash_copy(dir.path());
    std::filesystem::resize_file(log, std::filesystem::file_size(log) - 30);
    auto copy = store::rocksdb_store::open(dir / "copy").value();
    CHECK(copy->get("t100").value().has_value());
    CHECK(copy->get("t138").value().has_value());
    CHECK_FALSE(copy->get("t139").value().has_value());
  }
}
