#include "tests/support/sidecar.hpp"

#include "proxy/log.hpp"
#include "proxy/server.hpp"
#include "store/rocksdb_store.hpp"
#include "tests/support/http_client.hpp"
#include "tokenapi/api.hpp"
#include "tokenapi/token_service.hpp"

#include <boost/json.hpp>
#include <boost/system/result.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>

namespace tokengate::test {

proxy::config test_settings() {
  proxy::config c;
  c.threads = 2;
  c.limits.shutdown_timeout = std::chrono::milliseconds(5000);
  return c;
}

struct sidecar::impl {
  impl(std::uint16_t upstream_port, proxy::config s) : settings(std::move(s)) {
    settings.listen = {settings.listen.host == "::" ? "::" : "127.0.0.1", 0};
    settings.admin_listen = {"127.0.0.1", 0};
    settings.upstream.port = upstream_port; // the host stays: 127.0.0.1 unless a test names one
    settings.data_dir = dir / "data";
    settings.bootstrap_token_file = dir / "data" / "admin-token";
    if (!service.load())
      throw std::runtime_error("sidecar: load failed");
    service.bootstrap(settings.bootstrap_token_file);
    std::ifstream key_file(settings.bootstrap_token_file);
    std::getline(key_file, admin_key);
    next = settings;
    server = std::make_unique<proxy::server>(proxy::server_dependencies{
        settings, auth, api, service, clock, log, nullptr, [this] { return reloaded(); }});
    server->start();
  }

  temp_dir dir;
  proxy::config settings;
  std::unique_ptr<store::rocksdb_store> store = store::rocksdb_store::open(dir / "data").value();
  tokenapi::authorizer auth;
  tokenapi::system_clock clock;
  tokenapi::token_service service{*store, auth, clock};
  tokenapi::api_handler api{service, auth, clock};
  /// What a reload reads: the settings of the test's reload_with, with this sidecar's
  /// addresses and directories; a config_error when the test made it fail.
  proxy::config reloaded() {
    std::lock_guard lock(reload_mutex);
    if (!next)
      throw proxy::config_error(next.error());
    auto c = *next;
    c.listen = settings.listen;
    c.admin_listen = settings.admin_listen;
    c.upstream = settings.upstream;
    c.data_dir = settings.data_dir;
    c.bootstrap_token_file = settings.bootstrap_token_file;
    return c;
  }

  std::mutex reload_mutex;
  boost::system::result<proxy::config, std::string> next = proxy::config{};
  int log_fd = ::open((dir / "log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  proxy::log_sink log{log_fd, proxy::log_level::debug};
  std::unique_ptr<proxy::server> server;
  std::string admin_key;
};

sidecar::sidecar(std::uint16_t upstream_port, proxy::config settings)
    : impl_(std::make_unique<impl>(upstream_port, std::move(settings))) {}

sidecar::~sidecar() {
  stop();
  ::close(impl_->log_fd);
}

std::uint16_t sidecar::port() const { return impl_->server->port(); }
std::uint16_t sidecar::admin_port() const { return impl_->server->admin_port(); }
const std::string& sidecar::admin_key() const { return impl_->admin_key; }
const proxy::config& sidecar::settings() const { return impl_->settings; }
const temp_dir& sidecar::dir() const { return impl_->dir; }

sidecar::created sidecar::create_token(const std::string& name,
                                       const std::vector<std::string>& permissions,
                                       const std::vector<std::string>& cidrs) {
  boost::json::array perms(permissions.begin(), permissions.end());
  boost::json::array blocks(cidrs.begin(), cidrs.end());
  boost::json::object spec;
  spec["name"] = name;
  spec["permissions"] = std::move(perms);
  spec["allowedCIDRBlocks"] = std::move(blocks);
  const auto body = boost::json::serialize(spec);
  auto r = request(port(), "POST", "/api-tokens", {{"X-API-Key", impl_->admin_key}}, body);
  INFO(r.body);
  REQUIRE(r.status == 200);
  const auto doc = r.json();
  const auto& o = doc.as_object();
  return {std::string(o.at("id").as_string()), std::string(o.at("value").as_string())};
}

std::string sidecar::log_text() const {
  impl_->log.flush();
  return read_file(impl_->dir / "log");
}

std::string sidecar::log_text_once(std::string_view needle, std::chrono::milliseconds wait) const {
  const auto until = std::chrono::steady_clock::now() + wait;
  auto text = log_text();
  while (text.find(needle) == std::string::npos && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    text = log_text();
  }
  return text;
}

void sidecar::reload_with(proxy::config next) {
  std::lock_guard lock(impl_->reload_mutex);
  impl_->next = std::move(next);
}

void sidecar::fail_reload_with(const std::string& error) {
  std::lock_guard lock(impl_->reload_mutex);
  impl_->next =
      boost::system::result<proxy::config, std::string>(boost::system::in_place_error, error);
}

void sidecar::stop() {
  if (impl_->server)
    impl_->server->stop();
}

} // namespace tokengate::test
