// The real binary, end to end: command line, start-up errors, bootstrap, durability across
// kill -9, secrets at rest, and SIGTERM.
#include "tests/e2e/gate_process.hpp"
#include "tests/e2e/small_disk.hpp"
#include "tests/support/occurrences.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>
#include <thread>

using namespace tokengate;
using test::call;
using test::gate_process;
using test::occurrences;
using test::read_file;

namespace {

std::string create(std::uint16_t port, const std::string& admin, const std::string& name,
                   std::string* id = nullptr) {
  auto r = call(port, "POST", "/api-tokens", admin,
                R"({"name":")" + name + R"(","permissions":["AlertRead"]})");
  REQUIRE(r.status == 200);
  auto doc = r.json();
  if (id)
    *id = std::string(doc.at("id").as_string());
  return std::string(doc.at("value").as_string());
}

// The times (seconds into the day, from the lines' "time") of RocksDB's background errors from
// the line that reports the store's first failed write on: the failure, then each try to resume.
std::vector<double> resume_tries(const std::string& out) {
  std::vector<double> times;
  const auto failed = out.find("a write failed, and the store takes none until it can be resumed");
  if (failed == std::string::npos)
    return times;
  std::istringstream lines(out.substr(out.rfind('\n', failed) + 1));
  for (std::string line; std::getline(lines, line);) {
    const bool first = times.empty();
    if (!first && line.find("Background IO error") == std::string::npos)
      continue;
    // {"time":"2026-11-30T04:32:27.563Z",...
    const auto t = line.find(R"("time":")");
    REQUIRE(t != std::string::npos);
    const auto clock = line.substr(t + 19, 12); // 04:32:27.563
    times.push_back(std::stoi(clock.substr(0, 2)) * 3600.0 + std::stoi(clock.substr(3, 2)) * 60.0 +
                    std::stod(clock.substr(6)));
    if (times.size() > 1 && times.back() < times[times.size() - 2])
      times.back() += 24 * 3600.0; // past midnight
  }
  return times;
}

// Every file under `dir`, whole, in one string.
std::string everything_under(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      all += read_file(e.path());
  return all;
}

} // namespace

TEST_CASE("help, version and command-line mistakes", "[e2e][cli]") {
  test::temp_dir dir;
  {
    test::process p({test::tokengate_binary(), "--help"}, dir.path());
    CHECK(p.wait(std::chrono::seconds(10)) == 0);
    CHECK_THAT(p.out(), Catch::Contains("tokengate serve"));
  }
  {
    test::process p({test::tokengate_binary(), "--version"}, dir.path());
    CHECK(p.wait(std::chrono::seconds(10)) == 0);
    CHECK_THAT(p.out(), Catch::StartsWith("tokengate "));
  }
  struct mistake {
    std::vector<std::string> args;
    std::string says;
  };
  std::ofstream(dir / "bad.json") << R"({"listen": "127.0.0.1:0", "treads": 4})";
  std::ofstream(dir / "broken.json") << "{\n  \"listen\": \n}";
  const mistake mistakes[] = {
      {{"serve", "--lisen", "x"}, "unknown option '--lisen'"},
      // README "Command line" gives this line as its example.
      {{"serve", "--threads", "0"},
       "tokengate: configuration error: threads must be an integer from 1 to 256 (from "
       "--threads)\n"},
      {{"serve", "--upstream", "ftp://a:1"}, "upstream"},
      {{"serve", "--tls-cert-file", "c.crt"}, "tls.key_file"},
      {{"serve", "--config", "missing.json"}, "cannot read config file missing.json"},
      {{"serve", "--config", "/dev/zero"}, "cannot read config file /dev/zero: not a regular file"},
      {{"serve", "--config", "."}, "cannot read config file .: not a regular file"},
      {{"serve", "--config", "bad.json"}, "unknown key \"treads\""},
      {{"serve", "--config", "broken.json"}, "line 3"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      // The config key's spelling: named without its value, which may hold a password.
      {{"serve", "--database_url=postgres://u:SECRET@h/db"}, "unknown option '--database_url' "},
      {{"migrate", "--database_url=postgres://u:SECRET@h/db"}, "unknown option '--database_url' "},
      {{"serve", "postgres://u:SECRET@h/db"}, "an argument that is not an --option (not shown"},
      {{"migrate", "--data-dir", "d", "postgres://u:SECRET@h/db"},
       "an argument that is not an --option (not shown"},
  };
  for (const auto& m : mistakes) {
    std::vector<std::string> args{test::tokengate_binary()};
    args.insert(args.end(), m.args.begin(), m.args.end());
    test::process p(args, dir.path());
    INFO(m.says);
    const auto status = p.wait(std::chrono::seconds(10));
    REQUIRE(status.has_value());
    CHECK(*status == 2);
    const auto err = p.err();
    CHECK_THAT(err, Catch::Contains(m.says));
    CHECK(err.find("SECRET") == std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(dir / "data")); // nothing was started
  }
}

TEST_CASE("the listening line gives the addresses, the tokens, the threads and OpenSSL's "
          "allocator",
          "[e2e][cli]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port(), {"--threads", "3"});
  const auto out = gate.proc().out();
  CHECK_THAT(out, Catch::Contains("\"listen\":\"127.0.0.1:" + std::to_string(gate.port()) + "\""));
  CHECK_THAT(out, Catch::Contains(
                      "\"admin_listen\":\"127.0.0.1:" + std::to_string(gate.admin_port()) + "\""));
  CHECK_THAT(out,
             Catch::Contains("\"upstream\":\"127.0.0.1:" + std::to_string(upstream.port()) + "\""));
  CHECK_THAT(out, Catch::Contains("\"tokens\":1,")); // the bootstrap key
  CHECK_THAT(out, Catch::Contains("\"threads\":3,"));
  // The release build gives OpenSSL mimalloc's (proxy/openssl_memory.hpp); the sanitizer build
  // the C library's (AddressSanitizer's) with a checking header.
#ifdef TOKENGATE_MIMALLOC
  CHECK_THAT(out, Catch::Contains("\"openssl_allocator\":\"mimalloc 2."));
#elif defined(__SANITIZE_ADDRESS__)
  CHECK_THAT(out, Catch::Contains("\"openssl_allocator\":\"system, checked\""));
#else
  CHECK_THAT(out, Catch::Contains("\"openssl_allocator\":\"system\""));
#endif
  CHECK_THAT(out, !Catch::Contains("OpenSSL allocates from the C library")); // no fallback
  // And the process serves with it: a token call and a proxied request.
  CHECK(call(gate.port(), "GET", "/api-tokens/self", gate.admin_key()).status == 200);
  CHECK(call(gate.port(), "GET", "/public/x", gate.admin_key()).status == 200);
}

#ifdef TOKENGATE_MIMALLOC
TEST_CASE("without libmimalloc OpenSSL keeps the C library's malloc, and a warning says why",
          "[e2e][cli]") {
  // The library is hidden from the sidecar alone: /dev/null mounted over it in a mount namespace
  // of its own, which takes root and unshare(1).
  const std::filesystem::path library = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
  const std::filesystem::path unshare = "/usr/bin/unshare";
  if (::geteuid() != 0 || !std::filesystem::exists(unshare) || !std::filesystem::exists(library)) {
    WARN("not run: needs root, " << unshare << " and " << library);
    return;
  }
  test::temp_dir dir;
  test::test_upstream upstream;
  test::process p({unshare.string(), "-m", "/bin/sh", "-c",
                   "mount --bind /dev/null " + library.string() + " && exec \"$0\" \"$@\"",
                   test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0", "--admin-listen",
                   "127.0.0.1:0", "--upstream",
                   "http://127.0.0.1:" + std::to_string(upstream.port()), "--data-dir", "data"},
                  dir.path());
  const bool listening = p.wait_for_output("\"msg\":\"listening\"", std::chrono::seconds(60));
  INFO("stdout: " << p.out() << "\nstderr: " << p.err());
  REQUIRE(listening);
  const auto out = p.out();
  CHECK_THAT(out, Catch::Contains("\"level\":\"warn\",\"msg\":\"OpenSSL allocates from the C "
                                  "library's malloc, not mimalloc\",\"reason\":\""));
  CHECK_THAT(out, Catch::Contains("libmimalloc.so.2"));
  CHECK_THAT(out, Catch::Contains("\"openssl_allocator\":\"system\""));
  CHECK(out.find("warn") < out.find("\"msg\":\"listening\"")); // before the listening line
  p.signal(SIGTERM);
  CHECK(p.wait(std::chrono::seconds(20)) == 0);
}
#endif

TEST_CASE("a misspelt TOKENGATE_ variable is named in one warning, its value never shown",
          "[e2e][cli]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port(), {},
                    {{"TOKENGATE_TLS_CERT", "/run/secrets/value-4242"},
                     {"TOKENGATE_SERVICE_HOST", "10.0.0.7"},
                     {"TOKENGATE_PORT_8080_TCP", "tcp://10.0.0.7:8080"},
                     {"TOKENGATE_ADMIN_SERVICE_PORT_HTTP", "9901"}});
  const auto out = gate.proc().out();
  // (The test's own environment may hold other such variables: TOKENGATE_WERROR of ./dev.)
  CHECK(occurrences(out, R"("variable":"TOKENGATE_TLS_CERT")") == 1);
  CHECK_THAT(out, Catch::Contains(R"("level":"warn","msg":"environment variable ignored: no )"
                                  R"(setting has this name","variable":"TOKENGATE_TLS_CERT")"));
  CHECK(out.find("value-4242") == std::string::npos);
  CHECK(out.find("TOKENGATE_SERVICE_HOST") == std::string::npos);
  CHECK(out.find("TOKENGATE_PORT_8080_TCP") == std::string::npos);
  CHECK(out.find("TOKENGATE_ADMIN_SERVICE_PORT_HTTP") == std::string::npos);
  // It turned nothing on: the listener is plain HTTP.
  CHECK(call(gate.port(), "GET", "/api-tokens", gate.admin_key()).status == 200);
  CHECK(gate.terminate() == 0);
}

TEST_CASE("the real environment: TOKENGATE_CONFIG names the file, a variable overrides the "
          "file and a flag overrides the variable",
          "[e2e][cli]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  // The file: 3 threads, paths no route matches denied, and an upstream that answers nothing.
  std::ofstream(dir / "tokengate.json")
      << R"({"threads": 3, "default_route": null, "upstream": "http://127.0.0.1:1"})";
  // gate_process gives --upstream (the live upstream) and --listen as flags.
  gate_process gate(dir.path(), upstream.port(), {},
                    {{"TOKENGATE_CONFIG", (dir / "tokengate.json").string()},
                     {"TOKENGATE_THREADS", "4"},
                     {"TOKENGATE_UPSTREAM", "http://127.0.0.1:2"},
                     {"TOKENGATE_LISTEN", "127.0.0.1:3"},
                     {"TOKENGATE_AUDIT_LOG_FILE", "audit.log"}});
  const auto out = gate.proc().out();
  CHECK_THAT(out, Catch::Contains("\"threads\":4,")); // the variable over the file
  CHECK_THAT(out, Catch::Contains("\"upstream\":\"127.0.0.1:" + std::to_string(upstream.port()) +
                                  "\"")); // the flag over the variable and the file
  CHECK(gate.port() != 3);
  // The file was read: no route and a null default_route deny the path.
  auto denied = call(gate.port(), "GET", "/anything", gate.admin_key());
  CHECK(denied.status == 403);
  CHECK(denied.message() == "no route allows this path");
  // The variable without a flag or a file key: the bootstrap token's audit event is in the file.
  CHECK_THAT(read_file(dir / "audit.log"), Catch::Contains("\"operation\":\"bootstrap\""));
  CHECK(gate.terminate() == 0);
}

TEST_CASE("a data directory another sidecar holds stops the start with one line", "[e2e][cli]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process first(dir.path(), upstream.port());
  test::process second({test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0",
                        "--admin-listen", "127.0.0.1:0", "--upstream",
                        "http://127.0.0.1:" + std::to_string(upstream.port()), "--data-dir",
                        "data"},
                       dir.path());
  CHECK(second.wait(std::chrono::seconds(10)) == 1);
  const auto err = second.err();
  CHECK_THAT(err, Catch::StartsWith("tokengate: cannot open token store in data: "));
  CHECK_THAT(err, Catch::Contains("LOCK"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  // The first sidecar goes on serving.
  CHECK(call(first.port(), "GET", "/api-tokens", first.admin_key()).status == 200);
  CHECK(first.terminate() == 0);
}

TEST_CASE("the bootstrap token is made once, however often the sidecar restarts",
          "[e2e][bootstrap]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  std::string key;
  for (int start = 0; start < 3; ++start) {
    gate_process gate(dir.path(), upstream.port());
    if (start == 0) {
      key = gate.admin_key();
      struct stat st {};
      REQUIRE(::stat((dir / "data" / "admin-token").c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
      CHECK_THAT(gate.proc().out(), Catch::Contains("admin-token"));
    }
    CHECK(gate.admin_key() == key);
    auto list = call(gate.port(), "GET", "/api-tokens", key);
    REQUIRE(list.status == 200);
    auto results = list.json().at("results").as_array();
    REQUIRE(results.size() == 1);
    CHECK(results[0].at("name") == "bootstrap");
    CHECK(results[0].at("permissions").as_array().size() == 39);
    CHECK(gate.proc().out().find(key) == std::string::npos);
    CHECK(gate.terminate() == 0);
  }
}

TEST_CASE("a provided bootstrap file is adopted, and stays revoked once deleted",
          "[e2e][bootstrap]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  test::process keygen({test::tokengate_binary(), "keygen"}, dir.path());
  REQUIRE(keygen.wait(std::chrono::seconds(10)) == 0);
  const auto key = keygen.out().substr(0, keygen.out().find('\n'));
  std::filesystem::create_directories(dir / "data");
  std::ofstream(dir / "data" / "admin-token") << key << "\n";
  {
    gate_process gate(dir.path(), upstream.port());
    REQUIRE(call(gate.port(), "GET", "/api-tokens/self", key).status == 200);
    // The admin makes a narrower admin and deletes the bootstrap token.
    auto r = call(gate.port(), "POST", "/api-tokens", key,
                  R"({"name":"ops","permissions":["OrganizationAPITokenModify"]})");
    REQUIRE(r.status == 200);
    REQUIRE(call(gate.port(), "DELETE", "/api-tokens/self", key).status == 204);
    CHECK(gate.terminate() == 0);
  }
  gate_process again(dir.path(), upstream.port());
  CHECK(call(again.port(), "GET", "/api-tokens/self", key).status == 401);
  CHECK_THAT(again.proc().out(), Catch::Contains("stays revoked"));
}

TEST_CASE("a bootstrap file without a tokengate key stops the start with one line",
          "[e2e][bootstrap]") {
  test::temp_dir dir;
  std::filesystem::create_directories(dir / "data");
  std::ofstream(dir / "data" / "admin-token") << "hunter2\n";
  test::process p({test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0", "--admin-listen",
                   "127.0.0.1:0", "--data-dir", "data"},
                  dir.path());
  CHECK(p.wait(std::chrono::seconds(20)) == 1);
  CHECK_THAT(p.err(), Catch::Contains("does not hold a tokengate key"));
  CHECK(p.err().find("hunter2") == std::string::npos);
}

TEST_CASE("every answered write survives kill -9", "[e2e][durability]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  std::vector<std::string> kept;
  std::string deleted_value, rotated_old, rotated_new, rotated_id, deleted_id;
  std::string admin;
  {
    gate_process gate(dir.path(), upstream.port());
    admin = gate.admin_key();
    for (int i = 0; i < 20; ++i)
      kept.push_back(create(gate.port(), admin, std::to_string(i) + "t"));
    deleted_value = create(gate.port(), admin, "doomed", &deleted_id);
    rotated_old = create(gate.port(), admin, "rotated", &rotated_id);
    REQUIRE(call(gate.port(), "DELETE", "/api-tokens/" + deleted_id, admin).status == 204);
    auto r = call(gate.port(), "POST", "/api-tokens/" + rotated_id + "/rotate", admin);
    REQUIRE(r.status == 200);
    rotated_new = std::string(r.json().at("value").as_string());
    gate.proc().signal(SIGKILL); // no chance to flush anything
    CHECK(gate.proc().wait(std::chrono::seconds(10)) == 128 + SIGKILL);
  }
  gate_process gate(dir.path(), upstream.port());
  for (const auto& v : kept)
    CHECK(call(gate.port(), "GET", "/api-tokens/self", v).status == 200);
  CHECK(call(gate.port(), "GET", "/api-tokens/self", deleted_value).status == 401);
  CHECK(call(gate.port(), "GET", "/api-tokens/self", rotated_old).status == 401);
  CHECK(call(gate.port(), "GET", "/api-tokens/self", rotated_new).status == 200);
}

TEST_CASE("no token value is ever written to disk or to the log", "[e2e][secrets]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  std::vector<std::string> values;
  std::string out;
  {
    gate_process gate(dir.path(), upstream.port());
    const auto admin = gate.admin_key();
    for (int i = 0; i < 10; ++i)
      values.push_back(create(gate.port(), admin, std::to_string(i) + "t"));
    std::string id;
    values.push_back(create(gate.port(), admin, "rotating", &id));
    auto rotated = call(gate.port(), "POST", "/api-tokens/" + id + "/rotate", admin);
    values.emplace_back(rotated.json().at("value").as_string());
    for (const auto& v : values) {
      (void)call(gate.port(), "GET", "/alerts/1", v);
      auto refused = call(gate.port(), "GET", "/api-tokens", v); // 403: message has no key
      CHECK(refused.body.find(v) == std::string::npos);
    }
    // lastUsedAt is written in the background: let it reach the store before stopping.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(gate.terminate() == 0);
    out = gate.proc().out() + gate.proc().err();
  }
  const auto on_disk = everything_under(dir / "data");
  for (const auto& v : values) {
    INFO(v.substr(0, 6));
    CHECK(out.find(v) == std::string::npos);
    CHECK(on_disk.find(v) == std::string::npos);
  }
  // The bootstrap value lives only in its own file, never in the store or the log.
  const auto admin = read_file(dir / "data" / "admin-token");
  const auto key = admin.substr(0, admin.find('\n'));
  std::string store_files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "data"))
    if (e.is_regular_file() && e.path().filename() != "admin-token")
      store_files += read_file(e.path());
  CHECK(store_files.find(key) == std::string::npos);
  CHECK(out.find(key) == std::string::npos);
}

TEST_CASE("a port in use stops the start with one line and status 1", "[e2e][cli]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  test::test_upstream holder; // something else listens on the port the sidecar is given
  const auto taken = "127.0.0.1:" + std::to_string(holder.port());
  for (const auto& which : {"--listen", "--admin-listen"}) {
    INFO(which);
    std::vector<std::string> args{test::tokengate_binary(),
                                  "serve",
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--admin-listen",
                                  "127.0.0.1:0",
                                  "--upstream",
                                  "http://127.0.0.1:" + std::to_string(upstream.port()),
                                  "--data-dir",
                                  "data"};
    args.push_back(which);
    args.push_back(taken);
    test::process p(args, dir.path());
    CHECK(p.wait(std::chrono::seconds(10)) == 1);
    const auto err = p.err();
    CHECK_THAT(err, Catch::StartsWith("tokengate: "));
    CHECK_THAT(err, Catch::Contains(taken));
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

TEST_CASE("SIGINT stops the sidecar as SIGTERM does, with status 0", "[e2e][shutdown]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port());
  REQUIRE(call(gate.port(), "GET", "/public/x", gate.admin_key()).status == 200);
  gate.proc().signal(SIGINT);
  const auto status = gate.proc().wait(std::chrono::seconds(20));
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK_THAT(gate.proc().out(), Catch::Contains("\"msg\":\"stopped\""));
}

TEST_CASE("SIGTERM lets a request in flight finish, then exits 0", "[e2e][shutdown]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port());
  const auto key = gate.admin_key();
  auto slow = std::async(std::launch::async,
                         [&] { return call(gate.port(), "GET", "/slow?ms=1500", key); });
  // Wait until the request has reached the upstream, then ask the sidecar to stop.
  for (int i = 0; i < 200 && upstream.requests().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE_FALSE(upstream.requests().empty());
  gate.proc().signal(SIGTERM);
  // The admin listener closes with the main one: a readiness probe's connection is refused.
  REQUIRE(gate.proc().wait_for_output("\"msg\":\"stopping\"", std::chrono::seconds(5)));
  bool probe_refused = false;
  for (int i = 0; i < 100 && !probe_refused; ++i) {
    try {
      test::raw_connection probe(gate.admin_port());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } catch (const std::runtime_error&) {
      probe_refused = true;
    }
  }
  CHECK(probe_refused);
  auto answer = slow.get();
  CHECK(answer.status == 200);
  CHECK(answer.header("Connection") == "close");
  auto status = gate.proc().wait(std::chrono::seconds(20));
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK_THAT(gate.proc().out(), Catch::Contains("\"msg\":\"stopped\""));
}

namespace {

/// The access lines of `out` (the sidecar's stdout) whose path is `path`.
std::vector<std::string> access_lines(const std::string& out, std::string_view path) {
  std::vector<std::string> found;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"path\":\"" + std::string(path) + "\"") != std::string::npos &&
        line.find("\"status\":") != std::string::npos)
      found.push_back(line);
  return found;
}

} // namespace

TEST_CASE("a request still in flight at shutdown_timeout_ms is answered 503 and logged as cut",
          "[e2e][shutdown]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port(), {}, {{"TOKENGATE_SHUTDOWN_TIMEOUT_MS", "300"}});
  const auto key = gate.admin_key();
  // The upstream answers after 5 s: long after the sidecar has stopped waiting for it.
  auto slow = std::async(std::launch::async,
                         [&] { return call(gate.port(), "GET", "/slow?ms=5000", key); });
  for (int i = 0; i < 200 && upstream.requests().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE_FALSE(upstream.requests().empty());
  gate.proc().signal(SIGTERM);
  auto answer = slow.get();
  CHECK(answer.status == 503);
  CHECK(answer.header("Connection") == "close");
  CHECK(answer.json().at("message").as_string() ==
        "the sidecar is shutting down: the request was cut off at shutdown_timeout_ms and may have "
        "taken effect");
  CHECK(gate.wait_exit() == 0);
  const auto out = gate.proc().out();
  const auto lines = access_lines(out, "/slow");
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0],
             Catch::Contains("\"status\":503") && Catch::Contains("\"cut\":\"shutdown\""));
  CHECK_THAT(out, Catch::Contains("\"msg\":\"stopped\""));
}

TEST_CASE("a token call whose body is still coming at shutdown_timeout_ms is answered 503, "
          "not made",
          "[e2e][shutdown]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port(), {}, {{"TOKENGATE_SHUTDOWN_TIMEOUT_MS", "300"}});
  const auto key = gate.admin_key();
  // Half of a create's body, and then nothing.
  const std::string body = R"({"name":"half","permissions":["AlertRead"]})";
  test::raw_connection client(gate.port());
  REQUIRE(client.send("POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
                      "\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the head read
  gate.proc().signal(SIGTERM);
  const auto answer = client.read_until_close(std::chrono::seconds(10));
  CHECK(test::status_of(answer) == 503);
  CHECK_THAT(answer, Catch::Contains("the sidecar is shutting down"));
  CHECK(gate.wait_exit() == 0);
  const auto out = gate.proc().out();
  const auto lines = access_lines(out, "/api-tokens");
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0],
             Catch::Contains("\"status\":503") && Catch::Contains("\"cut\":\"shutdown\""));
  // No call was made, so none was audited (a 408 refusal would have been).
  CHECK(out.find("\"operation\":\"create\"") == std::string::npos);
}

TEST_CASE("an answer still streaming at shutdown_timeout_ms is cut, and its line says so",
          "[e2e][shutdown]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  gate_process gate(dir.path(), upstream.port(), {}, {{"TOKENGATE_SHUTDOWN_TIMEOUT_MS", "300"}});
  const auto key = gate.admin_key();
  // A client that reads the head of a 256 MiB download, then nothing: the answer cannot finish.
  test::raw_connection client(gate.port());
  REQUIRE(client.send("GET /download?bytes=268435456 HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
                      "\r\n\r\n"));
  REQUIRE_THAT(client.read_until("\r\n\r\n"), Catch::StartsWith("HTTP/1.1 200"));
  gate.proc().signal(SIGTERM);
  CHECK(gate.wait_exit() == 0);
  const auto lines = access_lines(gate.proc().out(), "/download");
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0],
             Catch::Contains("\"status\":200") && Catch::Contains("\"cut\":\"shutdown\""));
  CHECK_THAT(lines[0], !Catch::Contains("\"bytes_out\":268435"));
  // The client got less than the whole answer, and then the connection's end.
  CHECK(client.read_until_close(std::chrono::seconds(5)).size() < 268435456);
}

TEST_CASE("a full disk costs the token API its writes, not the proxy, writes come back once "
          "space is freed, and a stop still exits 0",
          "[e2e][durability][disk]") {
  test::temp_dir dir;
  // The data directory is the small disk; the sidecar's output goes elsewhere.
  test::small_disk disk(dir / "data", "4m");
  if (!disk.mounted()) {
    WARN("skipped: mounting a tmpfs needs root");
    return;
  }
  test::test_upstream upstream;
  std::string admin, before, before_id;
  {
    gate_process first(dir.path(), upstream.port());
    admin = first.admin_key();
    before = create(first.port(), admin, "before", &before_id);
    REQUIRE(first.terminate() == 0);
  }
  // Started again, RocksDB's memtable is empty (its log was replayed into a table file): the
  // case its resume cannot leave a failed log in, unless the store keeps something there.
  gate_process gate(dir.path(), upstream.port());

  disk.fill();
  // RocksDB's log file took the first writes in room it had set aside: a few more fill it.
  int refused = 0;
  for (int i = 0; i < 100 && refused == 0; ++i) {
    auto r = call(gate.port(), "POST", "/api-tokens", admin,
                  R"({"name":"full","permissions":["AlertRead"]})");
    if (r.status == 503) {
      CHECK(r.json().at("message") == "token store unavailable");
      ++refused;
    } else {
      REQUIRE(r.status == 200);
    }
  }
  REQUIRE(refused == 1);
  CHECK(call(gate.port(), "GET", "/alerts/1", before).status == 200); // decided from memory
  CHECK(call(gate.port(), "GET", "/api-tokens/self", before).status == 200);
  CHECK(gate.proc().wait_for_output(
      R"("level":"error","msg":"token store","detail":"a write failed, and the store takes none )"
      R"(until it can be resumed: IO error: No space left on device)",
      std::chrono::seconds(5)));
  // RocksDB's messages go to the log, not to a LOG file on the full disk (which, appended to
  // after a failed append, made Debian's RocksDB abort the process).
  CHECK_FALSE(std::filesystem::exists(dir / "data" / "LOG"));

  // Kept full while writes come: a write tries to resume the store a second after the failure,
  // then 2 and 4 seconds after the try before (README "Storage"); each try that fails is a
  // line of RocksDB's.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(8500);
  while (std::chrono::steady_clock::now() < until) {
    CHECK(call(gate.port(), "POST", "/api-tokens", admin,
               R"({"name":"full","permissions":["AlertRead"]})")
              .status == 503);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto tries = resume_tries(gate.proc().out());
  REQUIRE(tries.size() >= 4); // the failure, then three tries
  // Each line comes partway through its try: the slack is for a try slower than the one before
  // (a sanitizer build). Waits that do not double still fail: tries 1 s apart here, and 8 s
  // apart leave too few of them.
  CHECK(tries[1] - tries[0] >= 0.8);
  CHECK(tries[2] - tries[1] >= 1.7);
  CHECK(tries[3] - tries[2] >= 3.5);
  // Last-use times could not be written all that while: one line says so, not one a second.
  CHECK(occurrences(gate.proc().out(), R"("msg":"could not write last-use times")") == 1);

  // Far less than the 64 MiB RocksDB would wait for to resume by itself.
  disk.free();
  std::string after;
  for (int i = 0; i < 100 && after.empty(); ++i) {
    auto r = call(gate.port(), "POST", "/api-tokens", admin,
                  R"({"name":"after","permissions":["AlertRead"]})");
    if (r.status == 200)
      after = std::string(r.json().at("value").as_string());
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE_FALSE(after.empty());
  CHECK(gate.proc().wait_for_output(R"("msg":"token store","detail":"writes resumed")",
                                    std::chrono::seconds(5)));
  // The uses of `before` while the disk was full were kept, and are written now (the restart
  // below finds them).
  CHECK(gate.proc().wait_for_output(R"("msg":"last-use times written again")",
                                    std::chrono::seconds(5)));

  // Full again, a write refused, then SIGTERM: a clean stop, and everything answered is kept.
  disk.fill();
  for (int i = 0; i < 100; ++i)
    if (call(gate.port(), "POST", "/api-tokens", admin,
             R"({"name":"full","permissions":["AlertRead"]})")
            .status == 503)
      break;
  CHECK(gate.terminate() == 0);
  disk.free();
  gate_process again(dir.path(), upstream.port());
  const auto record = call(again.port(), "GET", "/api-tokens/" + before_id, admin);
  REQUIRE(record.status == 200);
  CHECK(record.json().at("lastUsedAt").is_string());
  CHECK(call(again.port(), "GET", "/api-tokens/self", before).status == 200);
  CHECK(call(again.port(), "GET", "/api-tokens/self", after).status == 200);
}
