// Live reload of the real binary (README "Live reload"): SIGHUP re-reads the config file; a route
// it adds is enforced on the next request, a broken file changes nothing, and POST /reload on the
// admin listener does the same and answers with what it did.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/occurrences.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <thread>

using namespace tokengate;
using namespace std::chrono_literals;
using test::gate_process;

namespace {

void write_config(const std::filesystem::path& file, std::string_view routes) {
  std::ofstream(file) << R"({"log_level": "info", "routes": )" << routes << "}";
}

constexpr std::string_view no_routes = "[]";
constexpr std::string_view admin_route = R"([{"prefix": "/admin", "permissions": ["UserModify"]}])";

/// Waits until the process has logged `text` `count` times (a reload is logged when applied).
bool logged(test::process& p, std::string_view text, std::size_t count) {
  for (int i = 0; i < 500; ++i) {
    if (test::occurrences(p.out(), text) >= count)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string create_plain_token(std::uint16_t port, const std::string& admin) {
  const auto r = test::request(port, "POST", "/api-tokens", {{"X-API-Key", admin}},
                               R"({"name":"plain","permissions":[]})");
  REQUIRE(r.status == 200);
  return std::string(r.json().at("value").as_string());
}

} // namespace

TEST_CASE("SIGHUP applies a route from the config file, and a broken file changes nothing",
          "[e2e][reload]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "tokengate.json";
  write_config(file, no_routes);
  gate_process gate(dir.path(), upstream.port(), {"--config", file.string()});
  const auto key = create_plain_token(gate.port(), gate.admin_key());
  const test::header_list with_key{{"X-API-Key", key}};
  REQUIRE(test::request(gate.port(), "GET", "/admin/users", with_key).status == 200);

  write_config(file, admin_route);
  gate.proc().signal(SIGHUP);
  REQUIRE(logged(gate.proc(), R"("msg":"configuration reloaded","changed":["routes"])", 1));
  CHECK(test::request(gate.port(), "GET", "/admin/users", with_key).status == 403);

  std::ofstream(file) << R"({"routes": [{"prefix": "/admin", "permisions": []}]})";
  gate.proc().signal(SIGHUP);
  REQUIRE(logged(gate.proc(), R"("msg":"configuration reload failed; nothing changed")", 1));
  CHECK_THAT(gate.proc().out(), Catch::Contains("permisions"));
  CHECK(test::request(gate.port(), "GET", "/admin/users", with_key).status == 403);

  // POST /reload reads the same file and answers with what it did.
  write_config(file, no_routes);
  const auto r = test::request(gate.admin_port(), "POST", "/reload");
  INFO(r.body);
  CHECK(r.status == 200);
  CHECK(r.body == R"({"result":"applied","changed":["routes"],"restartRequired":[]})");
  CHECK(test::request(gate.port(), "GET", "/admin/users", with_key).status == 200);

  // Flags outrank the file: a reload re-reads both, so --upstream stays as it was.
  std::ofstream(file) << R"({"upstream": "http://127.0.0.1:1", "threads": 3})";
  const auto restart = test::request(gate.admin_port(), "POST", "/reload");
  CHECK(restart.body == R"({"result":"applied","changed":[],"restartRequired":["threads"]})");
  CHECK(gate.terminate() == 0);
}

TEST_CASE("a config file that is a FIFO, a device or too large is refused by a reload, which "
          "keeps the settings in force",
          "[e2e][reload]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "tokengate.json";
  write_config(file, admin_route);
  gate_process gate(dir.path(), upstream.port(), {"--config", file.string()});
  const auto key = create_plain_token(gate.port(), gate.admin_key());
  const test::header_list with_key{{"X-API-Key", key}};
  REQUIRE(test::request(gate.port(), "GET", "/admin/users", with_key).status == 403);

  const auto refused = [&](std::string_view why) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = test::request(gate.admin_port(), "POST", "/reload");
    CHECK(std::chrono::steady_clock::now() - started < 5s); // no read that waits
    CHECK(r.status == 422);
    CHECK(r.message() == "configuration error: cannot read config file " + file.string() + ": " +
                             std::string(why));
    // The routes in force stay, and the sidecar goes on answering.
    CHECK(test::request(gate.port(), "GET", "/admin/users", with_key).status == 403);
    CHECK(test::request(gate.admin_port(), "GET", "/healthz").status == 200);
  };
  std::filesystem::remove(file);
  REQUIRE(::mkfifo(file.c_str(), 0600) == 0); // no writer: a read would wait for good
  refused("not a regular file");
  std::filesystem::remove(file);
  std::filesystem::create_symlink("/dev/zero", file);
  refused("not a regular file");
  std::filesystem::remove(file);
  std::ofstream(file) << R"({"routes": [])" << std::string(1 << 20, ' ') << "}";
  refused("larger than 1048576 bytes");

  write_config(file, no_routes);
  CHECK(test::request(gate.admin_port(), "POST", "/reload").status == 200);
  CHECK(test::request(gate.port(), "GET", "/admin/users", with_key).status == 200);
  CHECK(gate.terminate() == 0);
}
