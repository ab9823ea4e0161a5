// The config loader, fed a config file and the JSON-valued variables. Property: every input is a
// configuration or one config_error line naming the problem; nothing else escapes.
#include "proxy/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <string>

using namespace tokengate::proxy;
using tokengate::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0)
    return 0;
  // The first byte picks where the text goes: the file, or one of the JSON variables.
  static const char* const variables[] = {nullptr, "TOKENGATE_ROUTES", "TOKENGATE_LIMITS",
                                          "TOKENGATE_DEFAULT_ROUTE", "TOKENGATE_TRUSTED_PROXIES"};
  const auto* variable = variables[data[0] % 5];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<std::string_view> args;
  if (variable == nullptr)
    args = {"--config", "fuzzed.json"};
  const file_reader read = [&](const std::string&) { return file_text{text, {}}; };
  const env_lookup env = [&](const std::string& name) -> std::optional<std::string> {
    if (variable != nullptr && name == variable)
      return text;
    return std::nullopt;
  };
  try {
    const auto c = load_config(args, env, read);
    check(c.threads >= 1 && c.threads <= 256, "threads within range");
    check(c.limits.max_header_bytes > 0, "a header limit");
  } catch (const config_error& e) {
    const std::string_view message = e.what();
    check(!message.empty() && message.find('\n') == std::string_view::npos,
          "one line naming the problem");
  }
  return 0;
}
