#pragma once

// The TLS tests' fixture: a CA, a server certificate for localhost, and a sidecar serving it.
#include "tests/integration/proxy_fixture.hpp"
#include "tests/support/test_certificates.hpp"
#include "tests/support/tls_client.hpp"

#include <chrono>
#include <functional>
#include <thread>

namespace tokengate::test {

namespace fs = std::filesystem;

inline proxy::tls_settings tls13_only() {
  proxy::tls_settings s;
  s.tls13_only = true;
  return s;
}

inline proxy::tls_settings client_ca(const fs::path& file) {
  proxy::tls_settings s;
  s.client_ca_file = file;
  return s;
}

/// Lays `cert` and `key` out in `dir` as a Kubernetes secret volume does: tls.crt ->
/// ..data/tls.crt, tls.key -> ..data/tls.key, ..data -> ..v1.
inline void make_secret(const fs::path& dir, const fs::path& cert, const fs::path& key) {
  fs::create_directories(dir / "..v1");
  fs::copy_file(cert, dir / "..v1" / "tls.crt");
  fs::copy_file(key, dir / "..v1" / "tls.key");
  fs::create_directory_symlink("..v1", dir / "..data");
  fs::create_symlink("..data/tls.crt", dir / "tls.crt");
  fs::create_symlink("..data/tls.key", dir / "tls.key");
}

/// Swaps the secret's `..data` in `dir` to a new version holding `cert` and `key`, atomically.
inline void swap_secret(const fs::path& dir, const std::string& version, const fs::path& cert,
                        const fs::path& key) {
  fs::create_directories(dir / version);
  fs::copy_file(cert, dir / version / "tls.crt");
  fs::copy_file(key, dir / version / "tls.key");
  fs::create_directory_symlink(version, dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
}

/// The settings of a sidecar in front of an HTTPS upstream whose certificate `upstream_ca`
/// signed.
inline proxy::config https_upstream(const fs::path& upstream_ca) {
  auto c = test::example_routes();
  c.upstream_tls.enabled = true;
  c.upstream_tls.ca_file = upstream_ca;
  return c;
}

/// The settings of a sidecar serving TLS with `pair`, on top of `c`.
inline proxy::config serving(const certificate_files& pair,
                             proxy::config c = test::example_routes()) {
  c.tls.cert_file = pair.cert;
  c.tls.key_file = pair.key;
  return c;
}

/// Sets a sidecar's limits.
using limits_edit = std::function<void(proxy::limits&)>;

/// A CA, a server certificate for localhost, and a sidecar serving it over TLS.
struct tls_fixture {
  explicit tls_fixture(proxy::tls_settings tls = {}, bool symlinked = false,
                       const limits_edit& set_limits = {})
      : ca(dir.path(), "ca"), other_ca(dir.path(), "other-ca"),
        gate(upstream.port(), settings(std::move(tls), symlinked, set_limits)) {}
  /// The same with the limits `set_limits` sets.
  explicit tls_fixture(const limits_edit& set_limits) : tls_fixture({}, false, set_limits) {}

  // The pair lives in `secret/` as a Kubernetes secret volume lays it out when `symlinked`:
  // tls.crt -> ..data/tls.crt, ..data -> ..v1.
  proxy::config settings(proxy::tls_settings tls, bool symlinked, const limits_edit& set_limits) {
    auto c = test::example_routes();
    if (set_limits)
      set_limits(c.limits);
    const auto issued = ca.issue(dir.path(), "server", serial(0x1001));
    if (symlinked) {
      make_secret(dir / "secret", issued.cert, issued.key);
      tls.cert_file = dir / "secret" / "tls.crt";
      tls.key_file = dir / "secret" / "tls.key";
    } else {
      tls.cert_file = issued.cert;
      tls.key_file = issued.key;
    }
    c.tls = std::move(tls);
    return c;
  }

  /// Swaps the secret's `..data` to a new version holding `cert` and `key`, atomically.
  void swap_secret(const std::string& version, const fs::path& cert, const fs::path& key) {
    test::swap_secret(dir / "secret", version, cert, key);
  }

  inline tls_client_options trusting() const { return test::trusting(ca.cert_file()); }

  /// Creates a token through the API over TLS.
  std::string create_token(const std::string& name, const std::string& permission) {
    tls_client c(gate.port(), trusting());
    auto r = c.request("POST", "/api-tokens", {{"X-API-Key", gate.admin_key()}},
                       R"({"name":")" + name + R"(","permissions":[")" + permission + R"("]})");
    REQUIRE(r.status == 200);
    return r.json().at("value").as_string().c_str();
  }

  test::temp_dir dir;
  test::test_ca ca;
  test::test_ca other_ca;
  test::test_upstream upstream;
  test::sidecar gate;
};

/// An https upstream whose certificate a CA of its own signed, and a sidecar in front of it
/// that serves TLS too, with a certificate of the same CA, when `tls_listener`.
struct https_upstream_fixture {
  explicit https_upstream_fixture(bool tls_listener = false)
      : ca(dir.path(), "ca"), pair(ca.issue(dir.path(), "upstream")),
        upstream(0, {pair.cert.string(), pair.key.string()}),
        gate(upstream.port(), settings(tls_listener)) {}

  proxy::config settings(bool tls_listener) {
    auto c = https_upstream(ca.cert_file());
    return tls_listener ? serving(ca.issue(dir.path(), "server"), std::move(c)) : c;
  }

  test::temp_dir dir;
  test::test_ca ca;
  certificate_files pair;
  test::test_upstream upstream;
  test::sidecar gate;
};

/// Waits (at most 20 s) until `done` holds: the files are polled every two seconds.
template <class Predicate> bool eventually(Predicate done) {
  for (int i = 0; i < 200; ++i) {
    if (done())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

} // namespace tokengate::test
