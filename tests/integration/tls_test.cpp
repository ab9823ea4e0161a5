// TLS on the main listener (README "TLS"): handshakes with an independent client (Asio SSL and
// Beast), mutual TLS and the client-certificate header, plain HTTP on a TLS port, and
// certificates reloaded through a Kubernetes-style symlink swap. Certificates are made here.
#include "proxy/openssl_memory.hpp"
#include "tests/integration/tls_fixture.hpp"

#include <catch2/catch.hpp>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

using namespace tokengate;
using test::client_ca;
using test::eventually;
using test::https_upstream;
using test::serial;
using test::tls13_only;
using test::tls_client;
using test::tls_client_options;
using test::tls_fixture;
using test::trusting;
namespace fs = std::filesystem;

namespace {

/// A client certificate for the report job (job.example, and 127.0.0.1 unless cleared).
test::certificate_request report_job() {
  test::certificate_request job;
  job.common_name = "report-job";
  job.dns_names = {"job.example"};
  return job;
}

/// The notAfter of the certificate in `file` (PEM), as Unix time, read with OpenSSL's own API.
std::int64_t not_after_of(const fs::path& file) {
  FILE* in = std::fopen(file.c_str(), "r");
  REQUIRE(in != nullptr);
  X509* cert = PEM_read_X509(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  REQUIRE(cert != nullptr);
  std::tm tm{};
  const bool read = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1;
  X509_free(cert);
  REQUIRE(read);
  return static_cast<std::int64_t>(timegm(&tm));
}

/// `unix_seconds` as the log writes a time: 2026-01-31T12:00:00Z.
std::string utc_text(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

} // namespace

TEST_CASE("OpenSSL takes its memory from the allocator the build gives it, with OpenSSL's own "
          "contract",
          "[tls]") {
  // This binary links proxy/openssl_memory.cpp as the server does: every TLS test here runs on
  // it (mimalloc in the release build, a checking header in the sanitizer build).
  const std::string allocator(proxy::openssl_allocator());
#ifdef TOKENGATE_MIMALLOC
  CHECK_THAT(allocator, Catch::StartsWith("mimalloc 2."));
#elif defined(__SANITIZE_ADDRESS__)
  CHECK(allocator == "system, checked");
#else
  CHECK(allocator == "system");
#endif
  CHECK(proxy::openssl_allocator_fallback().empty());
  // As OpenSSL's default functions: no block for 0 bytes; a grown block keeps its bytes; a
  // realloc to 0 bytes frees.
  CHECK(OPENSSL_malloc(0) == nullptr);
  auto* block = static_cast<unsigned char*>(OPENSSL_malloc(100));
  REQUIRE(block != nullptr);
  std::memset(block, 0x5a, 100);
  block = static_cast<unsigned char*>(OPENSSL_realloc(block, 20000));
  REQUIRE(block != nullptr);
  CHECK(block[0] == 0x5a);
  CHECK(block[99] == 0x5a);
  CHECK(OPENSSL_realloc(block, 0) == nullptr);
  OPENSSL_free(nullptr);
}

TEST_CASE("TLS 1.2 and 1.3 are accepted with ALPN http/1.1, older versions are refused", "[tls]") {
  tls_fixture f;
  auto options = f.trusting();
  options.max_version = TLS1_2_VERSION;
  tls_client v12(f.gate.port(), options);
  CHECK(v12.version() == "TLSv1.2");
  CHECK(v12.alpn() == "http/1.1");
  CHECK(v12.peer_serial() == "1001");
  CHECK(v12.request("GET", "/public/x").status == 200);

  options.max_version = TLS1_3_VERSION;
  options.min_version = TLS1_3_VERSION;
  tls_client v13(f.gate.port(), options);
  CHECK(v13.version() == "TLSv1.3");
  CHECK(v13.request("GET", "/public/x").status == 200);

  options.min_version = TLS1_VERSION;
  options.max_version = TLS1_1_VERSION;
  CHECK_FALSE(test::handshake_error(f.gate.port(), options).empty());
  // A client that does not trust the CA refuses the server.
  CHECK_FALSE(test::handshake_error(f.gate.port(), trusting(f.other_ca.cert_file())).empty());
}

TEST_CASE("ALPN names http/1.1 or http/1.0, and a client that offers neither is refused in the "
          "handshake",
          "[tls]") {
  tls_fixture f;
  auto options = f.trusting();
  options.alpn = {"h2", "http/1.1"};
  CHECK(tls_client(f.gate.port(), options).alpn() == "http/1.1");
  options.alpn = {"http/1.0"};
  CHECK(tls_client(f.gate.port(), options).alpn() == "http/1.0");
  options.alpn = {}; // no ALPN at all: no protocol named, HTTP/1.1 spoken
  tls_client plain(f.gate.port(), options);
  CHECK(plain.alpn().empty());
  CHECK(plain.request("GET", "/public/x").status == 200);
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    INFO("TLS version " << version);
    options.min_version = options.max_version = version;
    options.alpn = {"h2"};
    CHECK_THAT(test::handshake_error(f.gate.port(), options),
               Catch::Contains("no application protocol"));
  }
}

TEST_CASE("the default cipher list's DHE suites negotiate with an RSA certificate", "[tls]") {
  test::temp_dir dir;
  test::test_ca ca(dir.path(), "ca");
  test::certificate_request rsa;
  rsa.rsa = true;
  test::test_upstream upstream;
  test::sidecar gate(upstream.port(), serving(ca.issue(dir.path(), "server", rsa)));
  auto options = trusting(ca.cert_file());
  options.max_version = TLS1_2_VERSION;
  // A client that offers only DHE (Mozilla's intermediate profile lists them, with ffdhe2048).
  for (const std::string cipher :
       {"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-GCM-SHA384"}) {
    INFO(cipher);
    options.ciphers = cipher;
    tls_client c(gate.port(), options);
    CHECK(c.cipher() == cipher);
    if (cipher.starts_with("DHE")) // a group as strong as the RSA 2048 key: ffdhe2048
      CHECK(c.key_exchange_bits() == 2048);
    CHECK(c.request("GET", "/public/x").status == 200);
  }
}

TEST_CASE("min_version 1.3 refuses TLS 1.2", "[tls]") {
  tls_fixture f(tls13_only());
  auto options = f.trusting();
  options.max_version = TLS1_2_VERSION;
  CHECK_FALSE(test::handshake_error(f.gate.port(), options).empty());
  options.max_version = 0;
  CHECK(test::handshake_error(f.gate.port(), options).empty());
}

TEST_CASE("the token API and the proxy work over TLS, the upstream hears https", "[tls]") {
  tls_fixture f;
  const auto key = f.create_token("reader", "AlertRead");
  tls_client c(f.gate.port(), f.trusting());
  CHECK(c.request("GET", "/alerts/1").status == 401);
  auto r = c.request("GET", "/alerts/1", {{"X-API-Key", key}, {"X-Forwarded-Proto", "http"}});
  CHECK(r.status == 200);
  CHECK(f.upstream.last().header("X-Forwarded-Proto") == "https");
  CHECK(f.upstream.last().header("X-Token-Name") == "reader");
  // Keep-alive: the same connection carries on.
  CHECK(c.request("GET", "/alerts/2", {{"X-API-Key", key}}).status == 200);
  // Without a client CA there is no client-certificate header, and a forged one is dropped.
  c.request("GET", "/public/x", {{"X-Forwarded-Client-Cert", "Subject=\"CN=admin\""}});
  CHECK(f.upstream.last().count("X-Forwarded-Client-Cert") == 0);
}

// OpenSSL reads ahead up to a record's size: the rest of a burst stays in the socket with no
// later edge-triggered event to announce it.
TEST_CASE("pipelined requests over TLS that come in one burst of several records are all "
          "served, with nothing more sent",
          "[tls]") {
  tls_fixture f;
  const auto key = f.create_token("modifier", "AlertModify");
  tls_client c(f.gate.port(), f.trusting());
  std::string burst;
  for (int i = 1; i <= 3; ++i)
    burst += "POST /alerts/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
             "\r\nContent-Length: 40000\r\n\r\n" + std::string(40000, 'a' + i);
  burst += "POST /alerts/last HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
           "\r\nContent-Length: 0\r\n\r\n";
  c.send(burst);
  for (int i = 0; i < 4; ++i)
    CHECK(c.read_response().status == 200);
  CHECK(f.upstream.last().target == "/alerts/last");
}

TEST_CASE("plain HTTP on the TLS port is answered 400 in JSON", "[tls]") {
  tls_fixture f;
  auto r = test::request(f.gate.port(), "GET", "/public/x");
  CHECK(r.status == 400);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(r.message() == "this port expects TLS: use https://");
  CHECK(f.upstream.requests().empty());
}

TEST_CASE("mutual TLS: only clients with a certificate of the client CA get in, and the "
          "upstream sees who they are",
          "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca clients(certs.path(), "clients");
  tls_fixture f(client_ca(clients.cert_file()));
  auto job = report_job();
  job.ip_addresses = {};
  job.uris = {"spiffe://example/job"};
  const auto good = clients.issue(certs.path(), "job", job);
  const auto stranger = f.other_ca.issue(certs.path(), "stranger", job);

  CHECK_FALSE(test::handshake_error(f.gate.port(), f.trusting()).empty());
  auto with_stranger = f.trusting();
  with_stranger.cert_file = stranger.cert;
  with_stranger.key_file = stranger.key;
  CHECK_FALSE(test::handshake_error(f.gate.port(), with_stranger).empty());
  CHECK(f.upstream.requests().empty());

  auto with_good = f.trusting();
  with_good.cert_file = good.cert;
  with_good.key_file = good.key;
  tls_client c(f.gate.port(), with_good);
  auto r = c.request("GET", "/public/x",
                     {{"X-Forwarded-Client-Cert", "Subject=\"CN=admin\""},
                      {"x-forwarded_client-cert", "Subject=\"CN=admin\""},
                      {"X-SSL-Client-S-DN", "CN=admin"}});
  CHECK(r.status == 200);
  const auto seen = f.upstream.last();
  CHECK(seen.count("X-Forwarded-Client-Cert") == 1);
  CHECK(
      seen.header("X-Forwarded-Client-Cert") ==
      R"(Subject="CN=report-job,O=tokengate tests";DNS="job.example";URI="spiffe://example/job")");
  CHECK(seen.count("X-SSL-Client-S-DN") == 0);
  CHECK(seen.count("x-forwarded_client-cert") == 0);
}

TEST_CASE("a client certificate's non-ASCII subject reaches the upstream escaped as its names are",
          "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca clients(certs.path(), "clients");
  tls_fixture f(client_ca(clients.cert_file()));
  auto job = report_job();
  job.common_name = "caf\xC3\xA9-job"; // "café-job" in UTF-8
  job.ip_addresses = {};
  const auto pair = clients.issue(certs.path(), "cafe", job);
  auto options = f.trusting();
  options.cert_file = pair.cert;
  options.key_file = pair.key;
  tls_client c(f.gate.port(), options);
  REQUIRE(c.request("GET", "/public/x").status == 200);
  CHECK(f.upstream.last().header("X-Forwarded-Client-Cert") ==
        R"(Subject="CN=caf\xC3\xA9-job,O=tokengate tests";DNS="job.example")");
}

TEST_CASE("a client certificate's email and IP names reach the upstream with its DNS and URI "
          "names, in the certificate's order",
          "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca clients(certs.path(), "clients");
  tls_fixture f(client_ca(clients.cert_file()));
  auto job = report_job();
  job.subject_alt_names = "email:ops@example.com,IP:10.20.30.40,DNS:job.example,"
                          "URI:spiffe://example/job,email:oncall@example.com,IP:192.0.2.7";
  const auto pair = clients.issue(certs.path(), "job", job);
  auto options = f.trusting();
  options.cert_file = pair.cert;
  options.key_file = pair.key;
  tls_client c(f.gate.port(), options);
  REQUIRE(
      c.request("GET", "/public/x", {{"X-Forwarded-Client-Cert", "Email=\"admin@example.com\""}})
          .status == 200);
  const auto seen = f.upstream.last();
  CHECK(seen.count("X-Forwarded-Client-Cert") == 1);
  CHECK(seen.header("X-Forwarded-Client-Cert") ==
        R"(Subject="CN=report-job,O=tokengate tests";Email="ops@example.com";IP="10.20.30.40";)"
        R"(DNS="job.example";URI="spiffe://example/job";Email="oncall@example.com";)"
        R"(IP="192.0.2.7")");
}

TEST_CASE("replacing client_ca_file shuts the old CA's clients out, resumed sessions included, "
          "and lets the new CA's in",
          "[tls][mtls][reload]") {
  test::temp_dir certs;
  test::test_ca old_clients(certs.path(), "old-clients");
  test::test_ca new_clients(certs.path(), "new-clients");
  const auto ca_file = certs.path() / "client-ca.pem";
  fs::copy_file(old_clients.cert_file(), ca_file);
  tls_fixture f(client_ca(ca_file));
  const auto old_pair = old_clients.issue(certs.path(), "old-job", report_job());
  const auto new_pair = new_clients.issue(certs.path(), "new-job", report_job());
  auto with_old = f.trusting();
  with_old.cert_file = old_pair.cert;
  with_old.key_file = old_pair.key;
  with_old.min_version = with_old.max_version = TLS1_2_VERSION; // its session is ready at once
  auto with_new = f.trusting();
  with_new.cert_file = new_pair.cert;
  with_new.key_file = new_pair.key;

  tls_client open(f.gate.port(), with_old);
  REQUIRE(open.request("GET", "/public/x").status == 200);
  const auto session = open.session();
  auto resuming = with_old;
  resuming.resume = session;
  CHECK(tls_client(f.gate.port(), resuming).resumed());
  CHECK_FALSE(test::handshake_error(f.gate.port(), with_new).empty());

  // The operator replaces the CA file (a new file renamed over the old), then reloads.
  fs::copy_file(new_clients.cert_file(), certs.path() / "client-ca.pem.new");
  fs::rename(certs.path() / "client-ca.pem.new", ca_file);
  f.gate.reload_with(f.gate.settings());
  REQUIRE(test::request(f.gate.admin_port(), "POST", "/reload").status == 200);

  CHECK_FALSE(test::handshake_error(f.gate.port(), with_old).empty());
  CHECK_FALSE(test::handshake_error(f.gate.port(), resuming).empty());
  tls_client admitted(f.gate.port(), with_new);
  CHECK(admitted.request("GET", "/public/x").status == 200);
  // A connection already open keeps what it started with (README "Certificate reload").
  CHECK(open.request("GET", "/public/x").status == 200);
}

TEST_CASE("a resumed mutual-TLS session still names the client to the upstream", "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca clients(certs.path(), "clients");
  tls_fixture f(client_ca(clients.cert_file()));
  const auto pair = clients.issue(certs.path(), "job", report_job());
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto options = f.trusting();
    options.cert_file = pair.cert;
    options.key_file = pair.key;
    options.min_version = options.max_version = version;
    test::tls_session session;
    {
      tls_client first(f.gate.port(), options);
      REQUIRE(first.request("GET", "/public/x").status == 200);
      CHECK_FALSE(first.resumed());
      session = first.session();
    }
    const auto header = f.upstream.last().header("X-Forwarded-Client-Cert");
    CHECK(header ==
          R"(Subject="CN=report-job,O=tokengate tests";DNS="job.example";IP="127.0.0.1")");
    options.resume = session;
    tls_client second(f.gate.port(), options);
    CHECK(second.resumed());
    CHECK(second.request("GET", "/public/x", {{"X-Forwarded-Client-Cert", "Subject=\"CN=admin\""}})
              .status == 200);
    CHECK(f.upstream.last().header("X-Forwarded-Client-Cert") == header);
  }
}

namespace {

// A client whose certificate chain expires at `expires`: while it holds, sessions resume (TLS
// 1.2 and 1.3) and requests pass; past it, no session resumes, the full handshake refuses the
// chain, and a keep-alive connection opened before is told (401) and closed.
void check_chain_expiry_ends_access(tls_fixture& f, const test::certificate_files& pair,
                                    std::chrono::steady_clock::time_point expires) {
  std::vector<std::pair<test::tls_client_options, test::tls_session>> kept;
  std::vector<std::unique_ptr<tls_client>> open;
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto options = f.trusting();
    options.cert_file = pair.cert;
    options.key_file = pair.key;
    options.min_version = options.max_version = version;
    tls_client first(f.gate.port(), options);
    REQUIRE(first.request("GET", "/public/x").status == 200);
    options.resume = first.session();
    // While the chain holds, the session resumes (and, in TLS 1.3, makes a new one).
    auto& again = *open.emplace_back(std::make_unique<tls_client>(f.gate.port(), options));
    CHECK(again.resumed());
    CHECK(again.request("GET", "/public/x").status == 200);
    kept.emplace_back(options, again.session());
  }
  // Expired sessions leave the cache on the server's 2-second tick.
  std::this_thread::sleep_until(expires + std::chrono::seconds(3));
  for (auto& [options, session] : kept) {
    INFO("TLS version " << options.min_version);
    options.resume = session;
    // Not resumed: the full handshake then checks the chain, which has expired (in TLS 1.3 the
    // client hears of it after its side of the handshake, at its first read).
    CHECK_THROWS([&] {
      tls_client late(f.gate.port(), options);
      (void)late.request("GET", "/public/x");
    }());
  }
  // A keep-alive connection opened with the chain is told, and closed.
  for (auto& c : open) {
    const auto r = c->request("GET", "/public/x");
    CHECK(r.status == 401);
    CHECK(r.message() == "the client certificate has expired: connect again with a valid one");
    CHECK(r.header("Connection") == "close");
  }
  CHECK(f.upstream.requests().size() == 4); // the four made while the chain held
}

} // namespace

TEST_CASE("a mutual-TLS client certificate's expiry ends its sessions and its open connections",
          "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca clients(certs.path(), "clients");
  tls_fixture f(client_ca(clients.cert_file()));
  test::certificate_request short_lived;
  short_lived.not_after = std::chrono::seconds(3);
  const auto pair = clients.issue(certs.path(), "short", short_lived);
  check_chain_expiry_ends_access(f, pair,
                                 std::chrono::steady_clock::now() + std::chrono::seconds(3));
}

TEST_CASE("an intermediate CA that expires before the client certificate ends its sessions and "
          "its open connections",
          "[tls][mtls]") {
  test::temp_dir certs;
  test::test_ca root(certs.path(), "clients-root");
  // The client sends its certificate with the intermediate; tokengate trusts the root alone.
  test::test_ca intermediate(root, certs.path(), "clients-intermediate", std::chrono::seconds(3));
  tls_fixture f(client_ca(root.cert_file()));
  const auto pair = intermediate.issue(certs.path(), "job", report_job()); // valid for 24 hours
  check_chain_expiry_ends_access(f, pair,
                                 std::chrono::steady_clock::now() + std::chrono::seconds(3));
}

TEST_CASE("a new certificate swapped in through the secret's symlink serves new connections, "
          "open ones keep theirs, a broken one is refused and reported",
          "[tls][reload]") {
  tls_fixture f({}, true);
  tls_client old_connection(f.gate.port(), f.trusting());
  CHECK(old_connection.peer_serial() == "1001");

  const auto next = f.ca.issue(f.dir.path(), "next", serial(0x2002));
  f.swap_secret("..v2", next.cert, next.key);
  CHECK(
      eventually([&] { return tls_client(f.gate.port(), f.trusting()).peer_serial() == "2002"; }));
  CHECK(old_connection.request("GET", "/public/x").status == 200);
  CHECK(old_connection.peer_serial() == "1001");
  // Found by the file watch, not a reload: its load line says so.
  CHECK_THAT(f.gate.log_text(),
             Catch::Contains(R"("msg":"TLS certificate loaded","listener":"main",)"
                             R"("trigger":"watch",)"));

  // A certificate with another certificate's key: never loaded.
  const auto third = f.ca.issue(f.dir.path(), "third", serial(0x3003));
  f.swap_secret("..v3", third.cert, next.key);
  const auto ready_error = [&] {
    auto r = test::request(f.gate.admin_port(), "GET", "/readyz");
    return r.status == 200 && r.json().as_object().contains("tls_reload_error");
  };
  CHECK(eventually(ready_error));
  CHECK(tls_client(f.gate.port(), f.trusting()).peer_serial() == "2002");
  const auto body = test::request(f.gate.admin_port(), "GET", "/readyz").json();
  CHECK_THAT(std::string(body.at("tls_reload_error").as_string()),
             Catch::Contains("does not match"));
  // The watch stores the error (what /readyz shows) just before it logs it.
  CHECK(eventually([&] {
    return f.gate.log_text().find("TLS certificate reload failed") != std::string::npos;
  }));

  // A good pair again clears the report.
  f.swap_secret("..v4", third.cert, third.key);
  CHECK(
      eventually([&] { return tls_client(f.gate.port(), f.trusting()).peer_serial() == "3003"; }));
  CHECK_FALSE(test::request(f.gate.admin_port(), "GET", "/readyz")
                  .json()
                  .as_object()
                  .contains("tls_reload_error"));
}

TEST_CASE("the served certificate's expiry is logged and in /metrics", "[tls][metrics]") {
  tls_fixture f;
  // README "Certificate reload": each load logs the certificate's subject, serial, not_after
  // and trigger, and /metrics carries the expiry as Unix time.
  const auto not_after = not_after_of(f.dir / "server.crt");
  CHECK_THAT(f.gate.log_text(),
             Catch::Contains(R"("msg":"TLS certificate loaded","listener":"main",)"
                             R"("trigger":"start",)"));
  CHECK_THAT(f.gate.log_text(), Catch::Contains(R"("subject":"CN=localhost,O=tokengate tests",)"
                                                R"("serial":"1001","not_after":")" +
                                                utc_text(not_after) + "\""));
  const auto metrics = test::request(f.gate.admin_port(), "GET", "/metrics").body;
  CHECK_THAT(metrics,
             Catch::Contains("\ntokengate_tls_certificate_expiry_seconds{listener=\"main\"} " +
                             std::to_string(not_after) + "\n"));
  // No client certificate for the upstream here: no figure for it.
  CHECK_THAT(metrics, !Catch::Contains("listener=\"upstream\""));
}

TEST_CASE("an https upstream is verified, its connections kept alive and its sessions resumed",
          "[tls][upstream]") {
  test::https_upstream_fixture f;
  test::http_client client(f.gate.port());
  for (int i = 0; i < 3; ++i)
    CHECK(client.request("GET", "/public/x").status == 200);
  CHECK(f.upstream.connections() == 1);
  CHECK(f.upstream.tls_handshakes() == 1);
  CHECK(f.upstream.last().header("X-Forwarded-Proto") == "http");
  // An IP address is checked in the certificate, never sent in SNI (RFC 6066).
  CHECK(f.upstream.last().tls.server_name.empty());

  // The upstream closes this one after answering; the next request needs a new handshake,
  // which resumes the session.
  CHECK(client.request("GET", "/public/drop-after").status == 200);
  CHECK(eventually([&] {
    return client.request("GET", "/public/x").status == 200 && f.upstream.tls_handshakes() == 2;
  }));
  CHECK(f.upstream.tls_resumed() >= 1);
}

TEST_CASE("an https upstream with a certificate of another CA or for another name is a 502",
          "[tls][upstream]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "upstream-ca");
  test::test_ca other(d.path(), "other-ca");
  test::certificate_request elsewhere;
  elsewhere.dns_names = {"elsewhere.example"};
  elsewhere.ip_addresses = {};
  const auto wrong_name = ca.issue(d.path(), "wrong-name", elsewhere);
  const auto wrong_ca = other.issue(d.path(), "wrong-ca");

  // The message says why: README "Upstream TLS" gives the other CA's as its example.
  for (const auto& [pair, why] : {std::pair{wrong_name, "IP address mismatch"},
                                  std::pair{wrong_ca, "unable to get local issuer certificate"}}) {
    INFO(why);
    test::test_upstream upstream(0, {pair.cert.string(), pair.key.string()});
    test::sidecar gate(upstream.port(), https_upstream(ca.cert_file()));
    auto r = test::request(gate.port(), "GET", "/public/x");
    CHECK(r.status == 502);
    CHECK(r.message() == std::string("upstream TLS certificate not accepted: ") + why);
    CHECK(upstream.requests().empty());
  }
}

TEST_CASE("an https upstream named by a DNS name is sent it in SNI, and its certificate must carry "
          "it",
          "[tls][upstream]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "upstream-ca");
  test::certificate_request elsewhere;
  elsewhere.dns_names = {"elsewhere.example"};
  elsewhere.ip_addresses = {"127.0.0.1"}; // the address would pass: the name is checked
  test::certificate_request localhost;
  localhost.ip_addresses = {};
  auto c = https_upstream(ca.cert_file());
  c.upstream.host = "localhost";
  {
    const auto wrong = ca.issue(d.path(), "elsewhere", elsewhere);
    test::test_upstream upstream(0, {wrong.cert.string(), wrong.key.string()});
    test::sidecar gate(upstream.port(), c);
    auto r = test::request(gate.port(), "GET", "/public/x");
    CHECK(r.status == 502);
    CHECK(r.message() == "upstream TLS certificate not accepted: hostname mismatch");
    CHECK(upstream.requests().empty());
  }
  const auto right = ca.issue(d.path(), "localhost", localhost);
  test::test_upstream upstream(0, {right.cert.string(), right.key.string()});
  test::sidecar gate(upstream.port(), c);
  CHECK(test::request(gate.port(), "GET", "/public/x").status == 200);
  CHECK(upstream.last().tls.server_name == "localhost");
}

TEST_CASE("the admin listener speaks TLS with an admin_tls block of its own", "[tls][admin]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  const auto pair = ca.issue(d.path(), "admin");
  auto c = test::example_routes();
  c.admin_tls.cert_file = pair.cert;
  c.admin_tls.key_file = pair.key;
  test::test_upstream upstream;
  test::sidecar gate(upstream.port(), c);
  tls_client admin(gate.admin_port(), trusting(ca.cert_file()));
  CHECK(admin.request("GET", "/readyz").status == 200);
  CHECK(test::request(gate.admin_port(), "GET", "/readyz").status == 400);
  // The main listener stays plain.
  CHECK(test::request(gate.port(), "GET", "/public/x").status == 200);
  const auto metrics = admin.request("GET", "/metrics").body;
  CHECK_THAT(metrics,
             Catch::Contains("tokengate_tls_certificate_expiry_seconds{listener=\"admin\"}"));
}

TEST_CASE("an expired certificate is served with a warning, a bad cipher list stops the start",
          "[tls]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "ca");
  test::certificate_request old;
  old.not_before = std::chrono::hours(-48);
  old.not_after = std::chrono::hours(-24);
  auto c = test::serving(ca.issue(d.path(), "expired", old));
  test::test_upstream upstream;
  {
    test::sidecar gate(upstream.port(), c);
    CHECK_THAT(gate.log_text(), Catch::Contains("TLS certificate loaded, and it has expired"));
    // What a client that checks the certificate sees.
    CHECK_THAT(test::handshake_error(gate.port(), trusting(ca.cert_file())),
               Catch::Contains("certificate verify failed"));
  }
  c.tls.ciphers = "NO-SUCH-CIPHER";
  CHECK_THROWS_WITH(test::sidecar(upstream.port(), c),
                    "tls.ciphers: no usable cipher in \"NO-SUCH-CIPHER\"");
}

TEST_CASE("upstream_tls.cert_file and key_file show a client certificate to the upstream",
          "[tls][upstream]") {
  test::temp_dir d;
  test::test_ca ca(d.path(), "upstream-ca");
  test::test_ca clients(d.path(), "clients");
  const auto pair = ca.issue(d.path(), "upstream");
  const auto gate_pair = clients.issue(d.path(), "gate");
  test::test_upstream upstream(
      0, {pair.cert.string(), pair.key.string(), clients.cert_file().string()});

  auto without = https_upstream(ca.cert_file());
  {
    test::sidecar gate(upstream.port(), without);
    CHECK(test::request(gate.port(), "GET", "/public/x").status == 502);
  }
  auto with = without;
  with.upstream_tls.cert_file = gate_pair.cert;
  with.upstream_tls.key_file = gate_pair.key;
  test::sidecar gate(upstream.port(), with);
  CHECK(test::request(gate.port(), "GET", "/public/x").status == 200);
  CHECK(upstream.requests().size() == 1);
  // Its expiry is watched as the served certificates' are.
  CHECK_THAT(test::request(gate.admin_port(), "GET", "/metrics").body,
             Catch::Contains("tokengate_tls_certificate_expiry_seconds{listener=\"upstream\"}"));
}
