// tokengate: dispatch the command line; `serve` is proxy/serve.cpp, `migrate` proxy/migrate.cpp.
#include "proxy/config.hpp"
#include "proxy/fleet.hpp"
#include "proxy/serve.hpp"
#include "tokenapi/token_value.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace tokengate;

namespace {

constexpr std::string_view version = "tokengate 0.1.0";

std::optional<std::string> environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

// The names of the process's environment variables.
std::vector<std::string> variable_names() {
  std::vector<std::string> names;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    names.emplace_back(text.substr(0, text.find('=')));
  }
  return names;
}

// Blanks the value of --database-url in the process's own command line, which every local user
// can read (ps, /proc/PID/cmdline): it may hold the database's password. The arguments were
// copied first. The config key's spelling, --database_url, is refused as unknown, but the process
// is visible until it exits: blanked too.
void hide_database_url(int argc, char** argv) {
  for (const std::string_view flag : {"--database-url", "--database_url"})
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      char* value = nullptr;
      if (arg == flag && i + 1 < argc)
        value = argv[i + 1];
      else if (arg.starts_with(flag) && arg.size() > flag.size() && arg[flag.size()] == '=')
        value = argv[i] + flag.size() + 1;
      if (value != nullptr)
        std::memset(value, '*', std::strlen(value));
    }
}

} // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> owned(argv + std::min(argc, 2), argv + argc);
  hide_database_url(argc, argv);
  const std::vector<std::string_view> args(owned.begin(), owned.end());
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "serve")
    return proxy::run_sidecar(args, environment, variable_names());
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
