// tokengate: dispatch the command line; `serve` is proxy/serve.cpp, `migrate` proxy/migrate.cpp.
#include "proxy/config.hpp"
#include "proxy/fleet.hpp"
#include "proxy/serve.hpp"
#include "tokenapi/token_value.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

using namespace tokengate;

namespace {

constexpr std::string_view version = "tokengate 0.1.0";

std::optional<std::string> environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + std::min(argc, 2), argv + argc);
  const std::string_view command = argc > 1 ? argv[1] : "";
  if (command == "serve")
    return proxy::run_sidecar(args, environment);
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
