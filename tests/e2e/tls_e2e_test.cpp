// The real binary over TLS (README "TLS"): configured by flags and variables, reached by curl,
// reloaded on SIGHUP, refusing to start on a broken pair, and speaking TLS to an https upstream
// (whose CA file can be replaced without a restart).
#include "tests/e2e/gate_process.hpp"
#include "tests/support/occurrences.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_certificates.hpp"
#include "tests/support/test_upstream.hpp"
#include "tests/support/tls_client.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

using namespace tokengate;
using test::serial;
using test::trusting;

namespace {

namespace fs = std::filesystem;

std::string hex(long n) {
  char text[32];
  std::snprintf(text, sizeof text, "%lX", n);
  return text;
}

// The line of `text` holding `what`, or "".
std::string line_with(const std::string& text, const std::string& what) {
  const auto at = text.find(what);
  if (at == std::string::npos)
    return {};
  const auto begin = text.rfind('\n', at);
  const auto end = text.find('\n', at);
  return text.substr(begin == std::string::npos ? 0 : begin + 1,
                     end == std::string::npos ? std::string::npos
                                              : end - (begin == std::string::npos ? 0 : begin + 1));
}

// Runs a program to its end; its standard output.
std::string run(const std::vector<std::string>& args, const fs::path& dir) {
  test::process p(args, dir);
  REQUIRE(p.wait(std::chrono::seconds(30)).has_value());
  return p.out();
}

} // namespace

TEST_CASE("the binary serves HTTPS to curl and reloads its certificate on SIGHUP", "[e2e][tls]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  const auto first = ca.issue(dir.path(), "server", serial(0x51));
  test::test_upstream upstream;
  test::gate_process gate(dir.path(), upstream.port(),
                          {"--tls-cert-file", first.cert.string(), "--tls-min-version", "1.2"},
                          {{"TOKENGATE_TLS_KEY_FILE", first.key.string()}});
  CHECK(gate.proc().wait_for_output("\"msg\":\"TLS certificate loaded\""));
  CHECK_THAT(gate.proc().out(), Catch::Contains("\"serial\":\"51\""));

  const auto url = "https://localhost:" + std::to_string(gate.port());
  const auto listed = run({"/usr/bin/curl", "-sS", "--cacert", ca.cert_file().string(),
                           url + "/api-tokens", "-H", "X-API-Key: " + gate.admin_key()},
                          dir.path());
  CHECK_THAT(listed, Catch::Contains("\"name\":\"bootstrap\""));
  const auto plain =
      run({"/usr/bin/curl", "-sS", "http://localhost:" + std::to_string(gate.port()) + "/public/x"},
          dir.path());
  CHECK(plain == R"({"message":"this port expects TLS: use https://"})");

  // Replaced in place, then SIGHUP: the load it makes names its trigger. The 2-second watch
  // could see a new pair first (then another try): at least one of three must be the signal's.
  bool by_signal = false;
  std::string served;
  for (long n = 0x52; n < 0x55 && !by_signal; ++n) {
    served = hex(n);
    const auto next = ca.issue(dir.path(), "next" + served, serial(n));
    fs::copy_file(next.cert, first.cert, fs::copy_options::overwrite_existing);
    fs::copy_file(next.key, first.key, fs::copy_options::overwrite_existing);
    gate.proc().signal(SIGHUP);
    REQUIRE(gate.proc().wait_for_output("\"serial\":\"" + served + "\""));
    by_signal = line_with(gate.proc().out(), "\"serial\":\"" + served + "\"")
                    .find("\"trigger\":\"reload\"") != std::string::npos;
  }
  CHECK(by_signal);
  CHECK(test::tls_client(gate.port(), trusting(ca.cert_file())).peer_serial() == served);
  CHECK(gate.terminate() == 0);
}

TEST_CASE("a key that does not match its certificate stops the start with one line", "[e2e][tls]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  const auto a = ca.issue(dir.path(), "a");
  const auto b = ca.issue(dir.path(), "b");
  test::process p({test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0", "--admin-listen",
                   "127.0.0.1:0", "--data-dir", "data", "--tls-cert-file", a.cert.string(),
                   "--tls-key-file", b.key.string()},
                  dir.path());
  const auto status = p.wait(std::chrono::seconds(20));
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  CHECK(p.err() == "tokengate: TLS key " + b.key.string() + " does not match certificate " +
                       a.cert.string() + "\n");
}

TEST_CASE("an https upstream is reached by name, verified against upstream_tls.ca_file",
          "[e2e][tls][upstream]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  const auto pair = ca.issue(dir.path(), "upstream");
  test::test_upstream upstream(0, {pair.cert.string(), pair.key.string()});
  const auto https = "https://localhost:" + std::to_string(upstream.port());
  test::gate_process gate(
      dir.path(), upstream.port(), {"--upstream", https},
      {{"TOKENGATE_UPSTREAM_TLS", R"({"ca_file":")" + ca.cert_file().string() + "\"}"}});
  auto r = test::request(gate.port(), "GET", "/public/x", {{"X-API-Key", gate.admin_key()}});
  CHECK(r.status == 200);
  CHECK(upstream.tls_handshakes() == 1);
  CHECK(gate.terminate() == 0);
}

TEST_CASE("a new upstream CA file is taken without a restart (SIGHUP, or the file watch first)",
          "[e2e][tls][upstream]") {
  test::temp_dir dir;
  test::test_ca first_ca(dir.path(), "first-ca");
  test::test_ca next_ca(dir.path(), "next-ca");
  const auto first = first_ca.issue(dir.path(), "first");
  const auto next = next_ca.issue(dir.path(), "next");
  const auto trusted = dir / "upstream-ca.crt";
  fs::copy_file(first_ca.cert_file(), trusted);
  auto upstream = std::make_unique<test::test_upstream>(
      0, test::upstream_tls_files{first.cert.string(), first.key.string()});
  const auto port = upstream->port();
  test::gate_process gate(dir.path(), port,
                          {"--upstream", "https://127.0.0.1:" + std::to_string(port),
                           "--upstream-tls-ca-file", trusted.string()});
  const test::header_list key{{"X-API-Key", gate.admin_key()}};
  CHECK(test::request(gate.port(), "GET", "/public/x", key).status == 200);

  // The upstream comes back on the same port with a certificate of the next CA.
  upstream.reset();
  upstream = std::make_unique<test::test_upstream>(
      port, test::upstream_tls_files{next.cert.string(), next.key.string()});
  const auto refused = test::request(gate.port(), "GET", "/public/x", key);
  CHECK(refused.status == 502);
  CHECK_THAT(refused.message(), Catch::StartsWith("upstream TLS certificate not accepted"));

  // The CA file is replaced whole (a rename), then SIGHUP.
  fs::copy_file(next_ca.cert_file(), dir / "upstream-ca.new");
  fs::rename(dir / "upstream-ca.new", trusted);
  gate.proc().signal(SIGHUP);
  // The signal's reload loads it (or the 2-second file watch, when it saw the file first).
  const auto loaded = [&] {
    const auto out = gate.proc().out();
    return out.find(R"("msg":"upstream TLS files loaded","trigger":"reload")") !=
               std::string::npos ||
           out.find(R"("msg":"upstream TLS files loaded","trigger":"watch")") != std::string::npos;
  };
  bool seen = loaded();
  for (int i = 0; i < 200 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = loaded();
  }
  CHECK(seen);
  CHECK(test::request(gate.port(), "GET", "/public/x", key).status == 200);
  CHECK(gate.terminate() == 0);
}

TEST_CASE("a broken certificate seen by the file watch is one error line, and the old one stays "
          "served",
          "[e2e][tls][reload]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  const auto main_pair = ca.issue(dir.path(), "main", serial(0x61));
  const auto admin_pair = ca.issue(dir.path(), "admin", serial(0x71));
  test::test_upstream upstream;
  test::gate_process gate(dir.path(), upstream.port(),
                          {"--tls-cert-file", main_pair.cert.string(), "--tls-key-file",
                           main_pair.key.string(), "--admin-tls-cert-file",
                           admin_pair.cert.string(), "--admin-tls-key-file",
                           admin_pair.key.string()});
  const auto options = trusting(ca.cert_file());
  REQUIRE(test::tls_client(gate.port(), options).peer_serial() == "61");

  // The main certificate is replaced whole (a rename) by a file that is not PEM. No signal: the
  // 2-second watch finds it.
  std::ofstream(dir / "broken.crt") << "not a certificate\n";
  fs::rename(dir / "broken.crt", main_pair.cert);
  const auto failure = std::string(R"("msg":"TLS certificate reload failed; the previous one is )"
                                   R"(still served","listener":"main")");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const auto failed = [&] { return gate.proc().out().find(failure) != std::string::npos; };
  while (!failed() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(failed());

  // Later ticks of the watch look at the broken file again: the admin listener's new pair, seen
  // by a later tick (the watch checks the main listener's files first), shows one has passed.
  const auto next = ca.issue(dir.path(), "admin-next", serial(0x72));
  fs::rename(next.key, admin_pair.key);
  fs::rename(next.cert, admin_pair.cert);
  const auto admin_loaded = [&] {
    return line_with(gate.proc().out(), R"("serial":"72")").find(R"("trigger":"watch")") !=
           std::string::npos;
  };
  while (!admin_loaded() && std::chrono::steady_clock::now() < deadline + std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(admin_loaded());
  const auto out = gate.proc().out();
  INFO(out);
  // (The admin pair's two renames may fail one tick of their own, as a mismatch.)
  CHECK(test::occurrences(out, failure) == 1);
  CHECK(out.find(failure) < out.find(R"("serial":"72")"));

  // The previous pair is still served, and /readyz says the reload failed.
  CHECK(test::tls_client(gate.port(), options).peer_serial() == "61");
  test::tls_client admin(gate.admin_port(), options);
  CHECK(admin.peer_serial() == "72");
  const auto ready = admin.request("GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK_THAT(ready.body, Catch::Contains("tls_reload_error"));
  CHECK(gate.terminate() == 0);
}

TEST_CASE("behind a trusted proxy on TLS, the upstream gets the proxy's X-Forwarded-Proto, or "
          "https when it sends none",
          "[e2e][tls][xff]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  const auto pair = ca.issue(dir.path(), "server");
  test::test_upstream upstream;
  test::gate_process gate(
      dir.path(), upstream.port(),
      {"--tls-cert-file", pair.cert.string(), "--tls-key-file", pair.key.string()},
      {{"TOKENGATE_TRUSTED_PROXIES", "127.0.0.0/8"}});
  test::tls_client proxy(gate.port(), trusting(ca.cert_file()));
  const auto key = gate.admin_key();
  // The proxy took the client's request over plain HTTP and says so.
  REQUIRE(proxy.request("GET", "/alerts/1", {{"X-API-Key", key}, {"X-Forwarded-Proto", "http"}})
              .status == 200);
  CHECK(upstream.last().header("X-Forwarded-Proto") == "http");
  CHECK(upstream.last().count("X-Forwarded-Proto") == 1);
  REQUIRE(proxy.request("GET", "/alerts/2", {{"X-API-Key", key}, {"X-Forwarded-Proto", "https"}})
              .status == 200);
  CHECK(upstream.last().header("X-Forwarded-Proto") == "https");
  // Without one, the connection's own scheme.
  REQUIRE(proxy.request("GET", "/alerts/3", {{"X-API-Key", key}}).status == 200);
  CHECK(upstream.last().header("X-Forwarded-Proto") == "https");
  CHECK(gate.terminate() == 0);
}
