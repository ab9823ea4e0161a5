// The audit trail through the real binary (README "Audit trail"): one event per token change and
// per refused call, with the right actor and target, never a key value, and every answered change
// in audit_log_file after kill -9.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <sstream>

using namespace tokengate;
using test::call;
using test::gate_process;

namespace {

std::vector<boost::json::object> events_in(const std::string& text) {
  std::vector<boost::json::object> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(R"("log":"audit")") == std::string::npos)
      continue;
    out.push_back(boost::json::parse(line).as_object());
  }
  return out;
}

std::string field(const boost::json::object& o, std::string_view name) {
  return std::string(o.at(name).as_string());
}

std::vector<std::string> names(const boost::json::object& o) {
  std::vector<std::string> out;
  for (const auto& v : o.at("changed").as_array())
    out.emplace_back(v.as_string());
  return out;
}

} // namespace

TEST_CASE("every token change and refused call is one audit event, in the file after kill -9",
          "[e2e][audit]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "audit.log";
  std::string admin, bootstrap_id, id, value, rotated, reader_value;
  std::string log_text;
  {
    gate_process gate(dir.path(), upstream.port(), {"--audit-log-file", file.string()});
    admin = gate.admin_key();
    const auto self = call(gate.port(), "GET", "/api-tokens/self", admin);
    REQUIRE(self.status == 200);
    bootstrap_id = std::string(self.json().at("id").as_string());
    auto created = call(gate.port(), "POST", "/api-tokens", admin,
                        R"({"name":"ci","permissions":["AlertRead"]})");
    REQUIRE(created.status == 200);
    id = std::string(created.json().at("id").as_string());
    value = std::string(created.json().at("value").as_string());
    REQUIRE(call(gate.port(), "POST", "/api-tokens/" + id, admin,
                 R"({"name":"ci-2","permissions":["AlertRead","RuleRead"]})")
                .status == 200);
    auto r = call(gate.port(), "POST", "/api-tokens/" + id + "/rotate", admin);
    REQUIRE(r.status == 200);
    rotated = std::string(r.json().at("value").as_string());
    CHECK(call(gate.port(), "DELETE", "/api-tokens/" + id, rotated).status == 403);
    CHECK(call(gate.port(), "GET", "/api-tokens", "tg_not_a_key").status == 401);
    REQUIRE(call(gate.port(), "DELETE", "/api-tokens/" + id, admin).status == 204);
    // The log stream is written within 100 ms of the answer; the file holds at once.
    CHECK(gate.proc().wait_for_output(R"("result":204)", std::chrono::seconds(10)));
    gate.proc().signal(SIGKILL);
    CHECK(gate.proc().wait(std::chrono::seconds(10)) == 128 + SIGKILL);
    log_text = gate.proc().out();
  }
  const auto text = test::read_file(file);
  const auto events = events_in(text);
  REQUIRE(events.size() == 7);

  std::string admin_id;
  CHECK(field(events[0], "operation") == "bootstrap");
  CHECK(field(events[0], "actor") == "system");
  CHECK(field(events[0], "target") == bootstrap_id);
  const auto expect = [&](std::size_t i, std::string_view op, std::string_view name,
                          std::vector<std::string> changed, std::int64_t result) {
    INFO("event " << i);
    CHECK(field(events[i], "operation") == op);
    CHECK(field(events[i], "target") == (result == 401 || result == 403 ? "" : id));
    CHECK(field(events[i], "target_name") == name);
    CHECK(names(events[i]) == changed);
    CHECK(events[i].at("result").as_int64() == result);
    CHECK(field(events[i], "client") == "127.0.0.1");
  };
  expect(1, "create", "ci", {"name", "permissions"}, 200);
  expect(2, "update", "ci-2", {"name", "permissions"}, 200);
  expect(3, "rotate", "ci-2", {"value"}, 200);
  expect(4, "delete", "", {}, 403);
  expect(5, "list", "", {}, 401);
  expect(6, "delete", "ci-2", {}, 204);
  admin_id = field(events[1], "actor");
  CHECK(admin_id == bootstrap_id);
  CHECK(field(events[2], "actor") == admin_id);
  CHECK(field(events[4], "actor") == id); // the rotated key, refused for its permissions
  CHECK(field(events[5], "actor").empty());

  // The same events went to the log stream; no key value anywhere.
  CHECK(events_in(log_text).size() == 7);
  for (const auto& secret : {admin, value, rotated}) {
    CHECK(text.find(secret) == std::string::npos);
    CHECK(log_text.find(secret) == std::string::npos);
  }
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("a token API call refused to a replaced value is audited as such", "[e2e][audit]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "audit.log";
  gate_process gate(dir.path(), upstream.port(), {"--audit-log-file", file.string()});
  auto created = call(gate.port(), "POST", "/api-tokens", gate.admin_key(),
                      R"({"name":"ops","permissions":["OrganizationAPITokenModify"]})");
  REQUIRE(created.status == 200);
  const std::string id(created.json().at("id").as_string());
  const std::string old_value(created.json().at("value").as_string());
  REQUIRE(call(gate.port(), "POST", "/api-tokens/" + id + "/rotate", gate.admin_key(),
               R"({"previousValueValidFor": 600})")
              .status == 200);
  CHECK(call(gate.port(), "POST", "/api-tokens/self/rotate", old_value).status == 403);

  std::vector<boost::json::object> events;
  REQUIRE(gate.proc().wait_for_output(R"("result":403)", std::chrono::seconds(10)));
  const auto text = test::read_file(file);
  events = events_in(text);
  REQUIRE(events.size() == 4); // bootstrap, create, rotate, the refused self rotate
  CHECK_FALSE(events[2].contains("previous_value"));
  CHECK(field(events[3], "operation") == "rotate");
  CHECK(field(events[3], "actor") == id);
  CHECK(events[3].at("result").as_int64() == 403);
  CHECK(events[3].at("previous_value") == true);
  CHECK(text.find(old_value) == std::string::npos);
}

TEST_CASE("a known key refused on the token API is named, a refused body is its caller's "
          "attempt, and a key sent where an id belongs stays out of the trail and the access log",
          "[e2e][audit]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "audit.log";
  gate_process gate(dir.path(), upstream.port(), {"--audit-log-file", file.string()});
  // Ends within the default expiry warning (7 days), so every answer to it says when.
  const auto ends = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() +
                                                         std::chrono::hours(24));
  std::tm parts{};
  gmtime_r(&ends, &parts);
  char expires[32];
  std::strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &parts);
  auto created =
      call(gate.port(), "POST", "/api-tokens", gate.admin_key(),
           std::string(R"({"name":"fenced","permissions":["OrganizationAPITokenRead"],)") +
               R"("allowedCIDRBlocks":["10.0.0.0/8"],"expiresAt":")" + expires + R"("})");
  REQUIRE(created.status == 200);
  const std::string id(created.json().at("id").as_string());
  const std::string value(created.json().at("value").as_string());

  const auto outside = call(gate.port(), "GET", "/api-tokens/self", value); // from 127.0.0.1
  CHECK(outside.status == 403);
  CHECK(outside.header("X-Token-Expires") == std::string(expires));
  // An operator revoking a leaked key by its value instead of its id.
  CHECK(call(gate.port(), "DELETE", "/api-tokens/" + value, gate.admin_key()).status == 404);
  // A change whose body is refused before it is read is an attempt of its caller's too.
  const std::string big(65537, ' ');
  CHECK(call(gate.port(), "POST", "/api-tokens/" + id, gate.admin_key(), big).status == 413);

  REQUIRE(gate.proc().wait_for_output(R"("result":413)", std::chrono::seconds(10)));
  const auto events = events_in(test::read_file(file));
  REQUIRE(events.size() == 5); // bootstrap, create, the refused self get, the delete, the update
  CHECK(field(events[2], "operation") == "get");
  CHECK(field(events[2], "actor") == id);
  CHECK(events[2].at("result").as_int64() == 403);
  CHECK(field(events[3], "target") == "tg_[redacted]");
  CHECK(events[3].at("result").as_int64() == 404);
  const auto admin_id = field(events[1], "actor");
  CHECK(field(events[4], "operation") == "update");
  CHECK(field(events[4], "actor") == admin_id);
  CHECK(field(events[4], "target") == id);
  CHECK(field(events[4], "target_name") == "fenced");
  CHECK(events[4].at("result").as_int64() == 413);

  REQUIRE(gate.proc().wait_for_output(R"("status":413,"token_id")", std::chrono::seconds(10)));
  const auto out = gate.proc().out();
  CHECK(out.find(R"("path":"/api-tokens/tg_[redacted]")") != std::string::npos);
  CHECK(out.find(R"("path":"/api-tokens/self","status":403,"token_id":")" + id + "\"") !=
        std::string::npos);
  CHECK(out.find(R"("status":413,"token_id":")" + admin_id + "\"") != std::string::npos);
  CHECK(out.find(value) == std::string::npos);
  CHECK(test::read_file(file).find(value) == std::string::npos);
}

TEST_CASE("a refused body (400) and a body that stops coming (408) are audited as their "
          "caller's attempts",
          "[e2e][audit]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "audit.log";
  gate_process gate(dir.path(), upstream.port(), {"--audit-log-file", file.string()},
                    {{"TOKENGATE_IDLE_TIMEOUT_MS", "500"}});
  CHECK(call(gate.port(), "POST", "/api-tokens", gate.admin_key(), R"({"name":"x"})").status ==
        400);
  test::raw_connection stalled(gate.port());
  stalled.send("POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gate.admin_key() +
               "\r\nContent-Length: 100\r\n\r\n{\"name\":");
  CHECK(test::status_of(stalled.read_until_close(std::chrono::seconds(5))) == 408);

  REQUIRE(gate.proc().wait_for_output(R"("result":408)", std::chrono::seconds(10)));
  const auto events = events_in(test::read_file(file));
  REQUIRE(events.size() == 3); // the bootstrap token, the 400, the 408
  const auto admin_id = field(events[0], "target");
  for (std::size_t i : {1, 2}) {
    CHECK(field(events[i], "operation") == "create");
    CHECK(field(events[i], "actor") == admin_id);
  }
  CHECK(events[1].at("result").as_int64() == 400);
  CHECK(events[2].at("result").as_int64() == 408);
}

TEST_CASE("SIGHUP reopens audit_log_file, so logrotate can move it away", "[e2e][audit]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  const auto file = dir / "audit.log";
  gate_process gate(dir.path(), upstream.port(), {"--audit-log-file", file.string()});
  const auto admin = gate.admin_key();
  const auto create = [&](std::string_view name) {
    auto r = call(gate.port(), "POST", "/api-tokens", admin,
                  R"({"name":")" + std::string(name) + R"(","permissions":["AlertRead"]})");
    REQUIRE(r.status == 200);
  };
  create("before-rotation");
  std::filesystem::rename(file, dir / "audit.log.1"); // logrotate's move
  gate.proc().signal(SIGHUP);
  REQUIRE(
      gate.proc().wait_for_output(R"("msg":"audit log file reopened")", std::chrono::seconds(10)));
  create("after-rotation");

  const auto rotated = events_in(test::read_file(dir / "audit.log.1"));
  const auto fresh = events_in(test::read_file(file));
  REQUIRE_FALSE(rotated.empty());
  CHECK(field(rotated.back(), "target_name") == "before-rotation");
  REQUIRE(fresh.size() == 1);
  CHECK(field(fresh.front(), "target_name") == "after-rotation");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // A path that cannot be opened (a directory now): one error line, and the file it had stays.
  std::filesystem::rename(file, dir / "audit.log.2");
  std::filesystem::create_directory(file);
  gate.proc().signal(SIGHUP);
  REQUIRE(gate.proc().wait_for_output(
      R"("level":"error","msg":"could not reopen the audit log file; it keeps the one it has")",
      std::chrono::seconds(10)));
  create("kept");
  const auto kept = events_in(test::read_file(dir / "audit.log.2"));
  REQUIRE_FALSE(kept.empty());
  CHECK(field(kept.back(), "target_name") == "kept");
}
