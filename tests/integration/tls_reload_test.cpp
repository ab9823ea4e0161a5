// TLS sessions and certificate reloads through POST /reload (README "TLS", "Live reload"): no
// TLS 1.2 session tickets, unchanged files kept, a pair that fails to load reported, and the
// upstream's client pair replaced without a restart.
#include "tests/integration/tls_fixture.hpp"
#include "tests/support/occurrences.hpp"

#include "proxy/detail/tls_context.hpp"

#include <catch2/catch.hpp>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <future>

using namespace tokengate;
using test::tls_fixture;
namespace fs = std::filesystem;

TEST_CASE("TLS 1.2 clients get no session ticket", "[tls]") {
  tls_fixture f;
  auto options = f.trusting();
  options.max_version = TLS1_2_VERSION;
  test::tls_client c(f.gate.port(), options);
  CHECK(c.version() == "TLSv1.2");
  CHECK_FALSE(c.has_ticket());
  CHECK(c.request("GET", "/public/x").status == 200);
}

TEST_CASE("a reload leaves a certificate whose files did not change as it is", "[tls][reload]") {
  tls_fixture f;
  f.gate.reload_with(test::example_routes());
  const auto r = test::request(f.gate.admin_port(), "POST", "/reload");
  CHECK(r.status == 200);
  CHECK(test::occurrences(f.gate.log_text(), R"("msg":"TLS certificate loaded")") == 1);
  CHECK(test::tls_client(f.gate.port(), f.trusting()).request("GET", "/public/x").status == 200);
}

TEST_CASE("sessions resume across a reload whose certificate files did not change, not across "
          "one that loads new files",
          "[tls][reload]") {
  // README "TLS": "a certificate reload that loads new files starts a new cache, and one whose
  // files did not change keeps it".
  tls_fixture f({}, true);
  const auto session_of = [&](int version) {
    auto options = f.trusting();
    options.min_version = options.max_version = version;
    test::tls_client c(f.gate.port(), options);
    REQUIRE(c.request("GET", "/public/x").status == 200); // TLS 1.3: the ticket came with it
    return c.session();
  };
  const auto resumes = [&](const test::tls_session& session, int version) {
    auto options = f.trusting();
    options.min_version = options.max_version = version;
    options.resume = session;
    test::tls_client c(f.gate.port(), options);
    REQUIRE(c.request("GET", "/public/x").status == 200);
    return c.resumed();
  };
  const auto reload = [&] {
    f.gate.reload_with(f.gate.settings());
    REQUIRE(test::request(f.gate.admin_port(), "POST", "/reload").status == 200);
  };
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    INFO("TLS version " << version);
    const auto kept = session_of(version);
    reload();
    CHECK(resumes(kept, version));
  }

  // A session each, then a new pair in the secret, loaded by the watch or the reload.
  const auto before12 = session_of(TLS1_2_VERSION);
  const auto before13 = session_of(TLS1_3_VERSION);
  const auto next = f.ca.issue(f.dir.path(), "next", test::serial(0x2002));
  f.swap_secret("..v2", next.cert, next.key);
  reload();
  REQUIRE(test::tls_client(f.gate.port(), f.trusting()).peer_serial() == "2002");
  CHECK_FALSE(resumes(before12, TLS1_2_VERSION));
  CHECK_FALSE(resumes(before13, TLS1_3_VERSION));
}

TEST_CASE("a reload whose certificate pair fails to load says so and counts as a failure",
          "[tls][reload]") {
  tls_fixture f({}, true);
  const auto next = f.ca.issue(f.dir.path(), "next", test::serial(0x2002));
  const auto other = f.ca.issue(f.dir.path(), "other", test::serial(0x3003));
  f.swap_secret("..v2", next.cert, other.key); // a key of another certificate
  f.gate.reload_with(test::example_routes());
  const auto r = test::request(f.gate.admin_port(), "POST", "/reload");
  CHECK(r.status == 422);
  const auto body = r.json().as_object();
  CHECK(body.at("result").as_string() == "applied");
  CHECK(body.at("certificates").as_string() == "failed");
  CHECK_THAT(std::string(body.at("certificateError").as_string()),
             Catch::Contains("does not match"));
  const auto metrics = test::request(f.gate.admin_port(), "GET", "/metrics").body;
  CHECK_THAT(metrics, Catch::Contains(R"(tokengate_config_reloads_total{result="failure"} 1)"));
  CHECK_THAT(metrics, Catch::Contains(R"(tokengate_config_reloads_total{result="success"} 0)"));
  // The previous pair is still served.
  CHECK(test::tls_client(f.gate.port(), f.trusting()).peer_serial() == "1001");
}

TEST_CASE("a certificate or key file that is a FIFO, a device or too large is refused by a "
          "reload without waiting, and the previous pair is still served",
          "[tls][reload]") {
  tls_fixture f({}, true);
  const auto secret = f.dir / "secret";
  const auto v1 = secret / "..v1";
  // A new version of the secret whose file `name` is made by `make`, the other copied from v1.
  const auto refused = [&](const std::string& version, const std::string& name,
                           const std::function<void(const fs::path&)>& make,
                           const std::string& message) {
    fs::create_directories(secret / version);
    for (const std::string file : {"tls.crt", "tls.key"})
      if (file == name)
        make(secret / version / file);
      else
        fs::copy_file(v1 / file, secret / version / file);
    fs::create_directory_symlink(version, secret / "..data_tmp");
    fs::rename(secret / "..data_tmp", secret / "..data");
    f.gate.reload_with(test::example_routes());
    const auto started = std::chrono::steady_clock::now();
    const auto r = test::request(f.gate.admin_port(), "POST", "/reload");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
    CHECK(r.status == 422);
    CHECK(std::string(r.json().at("certificateError").as_string()) == message);
    CHECK(test::request(f.gate.admin_port(), "GET", "/healthz").status == 200);
    CHECK(test::tls_client(f.gate.port(), f.trusting()).peer_serial() == "1001");
  };
  const auto fifo = [](const fs::path& p) { REQUIRE(::mkfifo(p.c_str(), 0600) == 0); };
  const auto zero = [](const fs::path& p) { fs::create_symlink("/dev/zero", p); };
  const auto huge = [](const fs::path& p) { std::ofstream(p) << std::string((4 << 20) + 1, 'x'); };
  const auto crt = (secret / "tls.crt").string();
  refused("..v2", "tls.crt", fifo, "cannot load TLS certificate " + crt + ": not a regular file");
  refused("..v3", "tls.key", fifo,
          "cannot load TLS key " + (secret / "tls.key").string() + ": not a regular file");
  refused("..v4", "tls.crt", zero, "cannot load TLS certificate " + crt + ": not a regular file");
  refused("..v5", "tls.crt", huge,
          "cannot load TLS certificate " + crt + ": larger than 4194304 bytes");
}

TEST_CASE("a certificate reload reads its files without holding what /healthz, /readyz and "
          "/metrics read",
          "[tls][reload]") {
  std::promise<void> release;
  const auto released = release.get_future().share();
  std::atomic<int> builds{0};
  // The second build (the reload) waits, as a read from a stuck network mount would.
  proxy::detail::reloadable_context context(
      [&] {
        if (builds++ > 0)
          released.wait();
        return std::pair{proxy::detail::reloadable_context::context_ptr{},
                         proxy::detail::certificate_facts{"CN=first", "01", 1}};
      },
      {});
  auto reloading = std::async(std::launch::async, [&] { return context.reload(); });
  while (builds.load() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto probe = std::async(std::launch::async,
                          [&] { return context.facts().subject + (context.error() ? "!" : ""); });
  CHECK(probe.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
  release.set_value();
  CHECK(probe.get() == "CN=first");
  CHECK_FALSE(reloading.get());
}

namespace {

/// A client certificate of `ca` named `name` with serial `n`.
test::certificate_files client_pair(const test::test_ca& ca, const fs::path& dir,
                                    const std::string& name, long n) {
  test::certificate_request r;
  r.common_name = name;
  r.serial = n;
  return ca.issue(dir, name, r);
}

} // namespace

TEST_CASE("a new upstream client pair swapped in through its secret's symlink is shown on new "
          "upstream connections, a broken one is kept out and reported",
          "[tls][upstream][reload]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "upstream-ca");
  test::test_ca clients(d.path(), "clients");
  const auto server = ca.issue(d.path(), "upstream");
  const auto first = client_pair(clients, d.path(), "gate-1", 0x1111);
  const auto second = client_pair(clients, d.path(), "gate-2", 0x2222);
  test::make_secret(d / "client", first.cert, first.key);
  test::test_upstream upstream(
      0, {server.cert.string(), server.key.string(), clients.cert_file().string()});
  auto c = test::example_routes();
  c.upstream_tls.enabled = true;
  c.upstream_tls.ca_file = ca.cert_file();
  c.upstream_tls.cert_file = d / "client" / "tls.crt";
  c.upstream_tls.key_file = d / "client" / "tls.key";
  test::sidecar gate(upstream.port(), c);
  test::http_client client(gate.port());
  REQUIRE(client.request("GET", "/public/x").status == 200);
  CHECK(upstream.last().tls.client_serial == "1111");

  test::swap_secret(d / "client", "..v2", second.cert, second.key);
  CHECK(test::request(gate.admin_port(), "POST", "/reload").status == 200);
  CHECK_THAT(gate.log_text(),
             Catch::Contains(R"("msg":"upstream TLS files loaded","trigger":"reload")"));
  // The pooled connection keeps the pair it was made with; the upstream closes it after this
  // answer, and the next request goes out on a new connection with the new pair (not a
  // resumption of the old pair's session).
  CHECK(client.request("GET", "/public/drop-after").status == 200);
  CHECK(upstream.last().tls.client_serial == "1111");
  CHECK(client.request("GET", "/public/x").status == 200);
  CHECK(upstream.last().tls.client_serial == "2222");
  CHECK(upstream.last().tls.client_subject == "CN=gate-2,O=tokengate tests");

  // A certificate with another certificate's key, seen by the file watch: never loaded.
  test::swap_secret(d / "client", "..v3", first.cert, second.key);
  CHECK(test::eventually([&] {
    auto r = test::request(gate.admin_port(), "GET", "/readyz");
    return r.status == 200 && r.json().as_object().contains("tls_reload_error");
  }));
  // The watch stores the error (what /readyz shows) just before it logs it.
  CHECK(test::eventually([&] {
    return gate.log_text().find("upstream TLS reload failed; the previous files are still used") !=
           std::string::npos;
  }));
  const auto r = test::request(gate.admin_port(), "POST", "/reload");
  CHECK(r.status == 422);
  CHECK(r.json().at("certificates").as_string() == "failed");
  CHECK_THAT(std::string(r.json().at("certificateError").as_string()),
             Catch::Contains("does not match"));
  CHECK(client.request("GET", "/public/drop-after").status == 200);
  CHECK(client.request("GET", "/public/x").status == 200);
  CHECK(upstream.last().tls.client_serial == "2222");
  CHECK(upstream.tls_resumed() == 1); // the unchanged context's session
}
