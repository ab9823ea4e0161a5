#pragma once

// Loading a configuration in the config tests: a fake environment, a config file in a temp
// dir, and the one-line message of a mistake.
#include "proxy/config.hpp"

#include "tests/support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::proxy::testing {

// A fake environment.
struct fake_env {
  std::map<std::string, std::string> vars;
  std::vector<std::string> asked;

  env_lookup lookup() {
    return [this](const std::string& name) -> std::optional<std::string> {
      asked.push_back(name);
      auto v = vars.find(name);
      if (v == vars.end())
        return std::nullopt;
      return v->second;
    };
  }
};

// A config file in a temp dir.
struct config_file {
  test::temp_dir dir;
  std::string path;

  explicit config_file(const std::string& text, const std::string& name = "tokengate.json")
      : path((dir / name).string()) {
    std::ofstream(path) << text;
  }
};

inline config load(const std::vector<std::string_view>& args,
                   const std::map<std::string, std::string>& env = {}) {
  fake_env e{env, {}};
  return load_config(args, e.lookup());
}

// The message of the config_error that loading throws; fails the test if nothing is thrown.
inline std::string error_of(const std::vector<std::string_view>& args,
                            const std::map<std::string, std::string>& env = {}) {
  try {
    (void)load(args, env);
  } catch (const config_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find('\n') == std::string::npos);
    CHECK_FALSE(message.empty());
    return message;
  }
  FAIL("no config_error was thrown");
  return {};
}

inline std::string file_error(const std::string& json) {
  config_file f(json);
  const auto message = error_of({"--config", f.path});
  CHECK_THAT(message, Catch::Contains("(from config file " + f.path + ")"));
  return message;
}

inline tokenapi::permission_set perms(std::initializer_list<tokenapi::permission> ps) {
  tokenapi::permission_set s;
  for (auto p : ps)
    s.insert(p);
  return s;
}

} // namespace tokengate::proxy::testing
