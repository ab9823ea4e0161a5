// The bootstrap token file on disk: what reading finds, and how a new one is written.
#include "tests/support/catch_result.hpp"
#include "tests/support/temp_dir.hpp"
#include "tokenapi/bootstrap_file.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

using namespace tokengate;
using tokengate::test::read_file;
using tokengate::test::temp_dir;
namespace fs = std::filesystem;

TEST_CASE("a bootstrap file that does not exist reads as none", "[bootstrap_file]") {
  temp_dir dir;
  auto read = tokenapi::read_bootstrap_file(dir / "admin-token");
  REQUIRE(read);
  CHECK_FALSE(read->has_value());
  CHECK_FALSE(fs::exists(dir / "admin-token")); // reading never creates it
}

TEST_CASE("a bootstrap file's value is read without the whitespace around it", "[bootstrap_file]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  for (std::string content : {"tg_value\n", "  tg_value \r\n\n", "tg_value", "\ttg_value\t"}) {
    std::ofstream(file, std::ios::trunc) << content;
    auto read = tokenapi::read_bootstrap_file(file);
    REQUIRE(read);
    REQUIRE(read->has_value());
    CHECK(**read == "tg_value");
  }
  std::ofstream(file, std::ios::trunc) << " \n";
  auto blank = tokenapi::read_bootstrap_file(file);
  REQUIRE(blank);
  REQUIRE(blank->has_value());
  CHECK((*blank)->empty());
}

TEST_CASE("a bootstrap file that exists but cannot be read is an error naming it",
          "[bootstrap_file]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  fs::create_directory(file);
  auto read = tokenapi::read_bootstrap_file(file);
  REQUIRE_FALSE(read);
  CHECK(read.error().message() ==
        "cannot read bootstrap token file " + file.string() + ": Is a directory");
}

TEST_CASE("a new bootstrap file holds the value on one line, mode 0600, in a new directory",
          "[bootstrap_file]") {
  temp_dir dir;
  const auto file = dir / "data" / "keys" / "admin-token";
  REQUIRE(tokenapi::write_bootstrap_file(file, "tg_secret"));
  CHECK(read_file(file) == "tg_secret\n");
  CHECK((fs::status(file).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  auto read = tokenapi::read_bootstrap_file(file);
  REQUIRE(read);
  REQUIRE(read->has_value());
  CHECK(**read == "tg_secret");
}

TEST_CASE("an existing bootstrap file is never replaced", "[bootstrap_file]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  std::ofstream(file) << "tg_first\n";
  auto written = tokenapi::write_bootstrap_file(file, "tg_second");
  REQUIRE_FALSE(written);
  CHECK(written.error().message() ==
        "cannot create bootstrap token file " + file.string() + ": File exists");
  CHECK(read_file(file) == "tg_first\n");
}

TEST_CASE("a bootstrap file whose directory cannot be made is an error naming it, not the value",
          "[bootstrap_file]") {
  temp_dir dir;
  std::ofstream(dir / "plain") << "not a directory\n";
  const auto file = dir / "plain" / "admin-token";
  auto written = tokenapi::write_bootstrap_file(file, "tg_secret");
  REQUIRE_FALSE(written);
  const auto message = written.error().message();
  CHECK_THAT(message, Catch::StartsWith("cannot create bootstrap token file " + file.string()));
  CHECK(message.find("tg_secret") == std::string::npos);
}

TEST_CASE("a bootstrap file the disk cannot take is removed, so the next start makes it again",
          "[bootstrap_file]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  // A file-size limit of 0: the write fails as on a full disk (EFBIG), without a signal.
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = before;
  limited.rlim_cur = 0;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  auto written = tokenapi::write_bootstrap_file(file, "tg_secret");
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &before) == 0);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE_FALSE(written);
  CHECK(written.error().message() ==
        "cannot write bootstrap token file " + file.string() + ": File too large");
  CHECK_FALSE(fs::exists(file));
  CHECK(tokenapi::write_bootstrap_file(file, "tg_secret"));
  CHECK(read_file(file) == "tg_secret\n");
}
