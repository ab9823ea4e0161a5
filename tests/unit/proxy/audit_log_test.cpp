// The audit trail's file (README "Audit trail"), on real files: a change is refused (503, nothing
// changed) while the file takes no writes, the lines held meanwhile are written first and in
// order once it does, and a line torn by a failed write is cut back off.
#include "proxy/audit_log.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/proxy/log_checks.hpp"
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::test;

namespace {

// Caps the size of the files this process writes (RLIMIT_FSIZE), as a full disk would: a write
// that crosses the cap is cut short, one past it fails (EFBIG). The cap is lifted on destruction.
class file_size_cap {
public:
  explicit file_size_cap(std::uintmax_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN); // the error, not the signal's default death
    auto capped = saved_;
    capped.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &capped) == 0);
  }
  ~file_size_cap() { lift(); }
  file_size_cap(const file_size_cap&) = delete;
  file_size_cap& operator=(const file_size_cap&) = delete;

  void lift() {
    if (lifted_)
      return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
  bool lifted_ = false;
};

// The audit file's lines, each parsed (whole JSON lines only).
std::vector<boost::json::object> file_events(const std::filesystem::path& file) {
  std::vector<boost::json::object> events;
  for (const auto& line : lines_of(read_file(file)))
    events.push_back(parse_line(line));
  return events;
}

// The log lines with this "msg".
std::size_t count_msg(const std::string& log, std::string_view msg) {
  std::size_t n = 0;
  for (const auto& line : lines_of(log)) {
    const auto o = parse_line(line);
    n += o.contains("msg") && o.at("msg").as_string() == msg;
  }
  return n;
}

// A whole token API whose audit trail goes to a real file.
struct audited_api : api_world {
  temp_dir dir;
  std::filesystem::path file = dir / "audit.log";
  pipe_pair log_pipe;
  proxy::log_sink log{log_pipe.write_end(), proxy::log_level::info};
  proxy::audit_log trail;
  tokenapi::api_handler audited{service, auth, clock, &trail};

  /// `audit_file`: the file the trail appends to; by default `file`, in a fresh directory.
  explicit audited_api(const std::filesystem::path& audit_file = {})
      : trail(log, audit_file.empty() ? file : audit_file) {}

  [[nodiscard]] client admin_client() { return client(audited, admin.value); }
  [[nodiscard]] std::string log_text() {
    log.flush();
    return log_pipe.available();
  }
};

constexpr std::string_view refused_message =
    "the audit trail cannot be written (audit_log_file): no change was made";

} // namespace

TEST_CASE_METHOD(audited_api,
                 "while the audit file takes no writes, changes are refused with 503 and nothing "
                 "changes, and once it does, the held lines are written first, in order",
                 "[audit]") {
  REQUIRE(admin_client().post("/api-tokens", spec_body("one", {"AlertRead"})).status == 200);
  REQUIRE(file_events(file).size() == 1);

  file_size_cap full(std::filesystem::file_size(file)); // a full disk
  // The change whose line fails is already made: answered as usual, its line held.
  const auto two = admin_client().post("/api-tokens", spec_body("two", {"AlertRead"}));
  CHECK(two.status == 200);
  const auto stored = records().size();
  // Every later change is refused and changes nothing; reads are still served.
  const auto three = admin_client().post("/api-tokens", spec_body("three", {"AlertRead"}));
  CHECK(three.status == 503);
  CHECK(three.message() == refused_message);
  CHECK(admin_client().del("/api-tokens/" + two.id()).status == 503);
  CHECK(admin_client().post("/api-tokens/" + two.id() + "/rotate").status == 503);
  CHECK(records().size() == stored);
  CHECK(admin_client().get("/api-tokens/" + two.id()).status == 200);
  CHECK(client(audited, std::nullopt).get("/api-tokens").status == 401);
  CHECK(file_events(file).size() == 1);

  full.lift();
  const auto four = admin_client().post("/api-tokens", spec_body("four", {"AlertRead"}));
  CHECK(four.status == 200);
  const auto events = file_events(file);
  REQUIRE(events.size() == 7);
  const std::vector<std::pair<std::string, int>> expected = {
      {"create", 200}, {"create", 200}, {"create", 503}, {"delete", 503},
      {"rotate", 503}, {"list", 401},   {"create", 200}};
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO(i);
    CHECK(events[i].at("operation").as_string() == expected[i].first);
    CHECK(events[i].at("result").to_number<int>() == expected[i].second);
  }
  CHECK(events[1].at("target_name").as_string() == "two");
  CHECK(events[6].at("target_name").as_string() == "four");

  // One error line for the outage, not one per event; one line when it ends.
  const auto logged = log_text();
  CHECK(count_msg(logged, "could not append to the audit log file") == 1);
  CHECK(count_msg(logged, "the audit log file takes writes again") == 1);
  CHECK(logged.find(R"("written":5,"dropped":0)") != std::string::npos);
  // Every event is in the log stream, the held ones too.
  std::size_t audit_lines = 0;
  for (const auto& line : lines_of(logged))
    audit_lines += line.find(R"("log":"audit")") != std::string::npos;
  CHECK(audit_lines == 7);
}

TEST_CASE("a write cut short is cut back off the audit file, which keeps whole lines", "[audit]") {
  temp_dir dir;
  const auto file = dir / "audit.log";
  pipe_pair log_pipe;
  proxy::log_sink log(log_pipe.write_end(), proxy::log_level::info);
  proxy::audit_log trail(log, file);
  tokenapi::audit_event e;
  e.operation = "create";
  e.actor_id = "system";
  e.target_name = "first";
  e.status = 200;
  trail.record(e);
  const auto whole = std::filesystem::file_size(file);
  REQUIRE(whole > 0);

  {
    file_size_cap cap(whole + 10); // room for 10 bytes of the next line only
    e.target_name = "second";
    trail.record(e);
    CHECK(std::filesystem::file_size(file) == whole);
    CHECK_FALSE(trail.ready());
  }
  CHECK(trail.ready());
  e.target_name = "third";
  trail.record(e);
  const auto events = file_events(file);
  REQUIRE(events.size() == 3);
  CHECK(events[0].at("target_name").as_string() == "first");
  CHECK(events[1].at("target_name").as_string() == "second");
  CHECK(events[2].at("target_name").as_string() == "third");
}

TEST_CASE("an audit file must be a regular file: a device or a FIFO is refused without waiting",
          "[audit]") {
  temp_dir dir;
  pipe_pair log_pipe;
  proxy::log_sink log(log_pipe.write_end(), proxy::log_level::info);
  // /dev/full (the attack report's full disk) takes no line; a FIFO's open would wait for a
  // reader, for good.
  CHECK_THROWS_WITH(proxy::audit_log(log, "/dev/full"),
                    "cannot open audit_log_file /dev/full: not a regular file");
  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(proxy::audit_log(log, fifo),
                    "cannot open audit_log_file " + fifo.string() + ": No such device or address");
}

TEST_CASE("the lines held while the audit file takes no writes are bounded, the rest are counted",
          "[audit]") {
  temp_dir dir;
  const auto file = dir / "audit.log";
  pipe_pair log_pipe;
  proxy::log_sink log(log_pipe.write_end(), proxy::log_level::info);
  tokenapi::audit_event e;
  e.operation = "list";
  e.client = "192.0.2.1";
  e.status = 401;
  std::size_t line_size = 0;
  {
    proxy::audit_log probe(log, dir / "probe.log");
    probe.record(e);
    line_size = std::filesystem::file_size(dir / "probe.log");
  }
  proxy::audit_log trail(log, file, 3 * line_size); // room for three held lines
  {
    file_size_cap full(0);
    for (int i = 0; i < 10; ++i)
      trail.record(e);
    CHECK_FALSE(trail.ready());
  }
  CHECK(trail.ready());
  CHECK(file_events(file).size() == 3);
  log.flush();
  const auto text = log_pipe.available();
  CHECK(text.find(R"("written":3,"dropped":7)") != std::string::npos);
  std::size_t audit_lines = 0;
  for (const auto& line : lines_of(text))
    audit_lines += line.find(R"("log":"audit")") != std::string::npos;
  CHECK(audit_lines == 11); // the log stream has them all, and the probe's
}
