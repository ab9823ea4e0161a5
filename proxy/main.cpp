// tokengate: parse the command line, wire the layers, run until SIGTERM.
#include "proxy/audit_log.hpp"
#include "proxy/config.hpp"
#include "proxy/fleet.hpp"
#include "proxy/log.hpp"
#include "proxy/server.hpp"
#include "store/rocksdb_store.hpp"
#include "tokenapi/api.hpp"
#include "tokenapi/token_service.hpp"
#include "tokenapi/token_value.hpp"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <pthread.h>
#include <unistd.h>

using namespace tokengate;

namespace {

constexpr std::string_view version = "tokengate 0.1.0";

std::string_view describe(tokenapi::token_service::bootstrap_outcome o) {
  using enum tokenapi::token_service::bootstrap_outcome;
  switch (o) {
  case created_from_file:
    return "bootstrap token created from file";
  case generated:
    return "bootstrap token generated and written to file";
  case present:
    return "bootstrap token from file is present";
  case revoked:
    return "bootstrap token from file was deleted or rotated since; it stays revoked";
  case not_needed:
    return "no bootstrap token file and the store holds tokens: nothing to do";
  }
  return "bootstrap";
}

// A bootstrap token that came into being at this start is a token change like any other.
void audit_bootstrap(proxy::audit_log& audit, tokenapi::token_service::bootstrap_outcome o) {
  using enum tokenapi::token_service::bootstrap_outcome;
  if (o != created_from_file && o != generated)
    return;
  tokenapi::audit_event e;
  e.operation = "bootstrap";
  e.actor_id = "system";
  e.target_name = "bootstrap";
  e.changed = {"name", "permissions"};
  e.status = 200;
  audit.record(e);
}

std::optional<std::string> environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

int serve(const std::vector<std::string_view>& args) {
  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP); // live reload, TLS certificates included
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  proxy::config config;
  try {
    config = proxy::load_config(args, environment);
  } catch (const proxy::config_error& e) {
    std::cerr << "tokengate: " << e.what() << '\n';
    return 2;
  }

  proxy::log_sink log(STDOUT_FILENO, config.level);
  try {
    auto local = store::rocksdb_store::open(config.data_dir);
    // Fleet mode: the database is the source of truth and `local` its replica.
    std::unique_ptr<proxy::fleet> fleet;
    if (!config.database_url.empty())
      fleet = std::make_unique<proxy::fleet>(config, *local, log);
    store::token_store& tokens = fleet ? fleet->store() : *local;
    tokenapi::authorizer auth;
    tokenapi::system_clock clock;
    tokenapi::token_service service(tokens, auth, clock);
    // The follower feeds `service`: it stops before `service` goes, also when the start fails.
    struct stop_following {
      std::unique_ptr<proxy::fleet>& f;
      ~stop_following() {
        if (f)
          f->stop();
      }
    } following{fleet};
    auto loaded = service.load();
    if (!loaded)
      throw std::runtime_error("cannot load tokens: " + loaded.error().message());
    if (loaded->unreadable != 0)
      log.event(proxy::log_level::warn, "some stored tokens are unreadable and stay unusable",
                [&](proxy::json_line& l) { l.add("count", std::uint64_t{loaded->unreadable}); });
    proxy::audit_log audit(log, config.audit_log_file);
    const auto bootstrap = [&] {
      const auto outcome = service.bootstrap(config.bootstrap_token_file);
      log.event(proxy::log_level::info, describe(outcome),
                [&](proxy::json_line& l) { l.add("file", config.bootstrap_token_file.string()); });
      audit_bootstrap(audit, outcome);
    };
    if (fleet)
      fleet->start(service, bootstrap, std::chrono::milliseconds(1000));
    else
      bootstrap();

    tokenapi::api_handler api(service, auth, clock, &audit);
    proxy::server server({config, auth, api, service, clock, log,
                          fleet ? &fleet->status() : nullptr,
                          [&args] { return proxy::load_config(args, environment); }});
    server.start();
    log.event(proxy::log_level::info, "listening", [&](proxy::json_line& l) {
      l.add("listen", proxy::endpoint{config.listen.host, server.port()}.to_string())
          .add("admin_listen",
               proxy::endpoint{config.admin_listen.host, server.admin_port()}.to_string())
          .add("upstream", config.upstream.to_string())
          .add("tokens", std::uint64_t{auth.size()})
          .add("threads", config.threads);
    });
    log.flush();

    int signal = 0;
    while (sigwait(&stop_signals, &signal) == 0 && signal == SIGHUP)
      (void)server.reload(); // logged and counted by the server
    log.event(proxy::log_level::info, "stopping", [&](proxy::json_line& l) {
      l.add("signal", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    });
    server.stop();
    if (fleet)
      fleet->stop();
    if (auto flushed = local->flush(); !flushed)
      log.event(proxy::log_level::warn, "could not flush the store",
                [&](proxy::json_line& l) { l.add("error", flushed.error().message()); });
    fleet.reset();
    local.reset();
    log.event(proxy::log_level::info, "stopped");
    return 0;
  } catch (const std::exception& e) {
    log.flush();
    std::cerr << "tokengate: " << e.what() << '\n';
    return 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + std::min(argc, 2), argv + argc);
  const std::string_view command = argc > 1 ? argv[1] : "";
  if (command == "serve")
    return serve(args);
  if (command == "migrate")
    return proxy::run_migrate(args, environment);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << proxy::usage();
    return 0;
  }
  if (command == "--version") {
    std::cout << version << '\n';
    return 0;
  }
  if (command == "keygen") {
    auto value = tokenapi::generate_value();
    if (!value) {
      std::cerr << "tokengate: random number generator unavailable\n";
      return 1;
    }
    std::cout << *value << '\n';
    return 0;
  }
  std::cerr << "tokengate: "
            << (command.empty() ? "missing command"
                                : "unknown command '" + std::string(command) + "'")
            << " (see tokengate --help)\n";
  return 2;
}
