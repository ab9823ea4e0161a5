// `tokengate migrate`: a standalone store's tokens into a fleet's database.
#include "proxy/fleet.hpp"
#include "store/pg_store.hpp"
#include "store/rocksdb_store.hpp"

#include <fstream>
#include <iostream>
#include <map>

namespace tokengate::proxy {
namespace {

constexpr std::size_t page_size = 1000;

struct migrate_args {
  std::string data_dir;
  std::string database_url;
  std::string password_file;
};

migrate_args parse_args(const std::vector<std::string_view>& args, const env_lookup& env) {
  std::map<std::string_view, std::string*> flags;
  migrate_args out;
  flags["--data-dir"] = &out.data_dir;
  flags["--database-url"] = &out.database_url;
  flags["--database-password-file"] = &out.password_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto eq = args[i].find('=');
    const auto name = args[i].substr(0, eq);
    auto f = flags.find(name);
    if (f == flags.end())
      throw unknown_option(name);
    if (eq != std::string_view::npos)
      *f->second = args[i].substr(eq + 1);
    else if (i + 1 < args.size())
      *f->second = args[++i];
    else
      throw config_error("option " + std::string(args[i]) + " needs a value");
  }
  const auto fallback = [&](std::string& v, const char* name) {
    if (auto e = env(name); v.empty() && e && !e->empty())
      v = *e;
  };
  fallback(out.data_dir, "TOKENGATE_DATA_DIR");
  fallback(out.database_url, "TOKENGATE_DATABASE_URL");
  fallback(out.password_file, "TOKENGATE_DATABASE_PASSWORD_FILE");
  if (out.data_dir.empty() || out.database_url.empty())
    throw config_error("migrate needs --data-dir and --database-url");
  return out;
}

std::string read_first_line(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line))
    throw std::runtime_error("cannot read database_password_file " + file);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

} // namespace

int run_migrate(const std::vector<std::string_view>& args, const env_lookup& env) {
  migrate_args a;
  try {
    a = parse_args(args, env);
  } catch (const config_error& e) {
    std::cerr << "tokengate: " << e.what() << '\n';
    return 2;
  }
  try {
    if (!std::filesystem::exists(std::filesystem::path(a.data_dir) / "CURRENT"))
      throw std::runtime_error("no token store in " + a.data_dir);
    if (const auto mistake = store::url_mistake(a.database_url); !mistake.empty())
      throw std::runtime_error(mistake);
    store::pg_settings settings{a.database_url,
                                a.password_file.empty() ? "" : read_first_line(a.password_file),
                                std::chrono::seconds(5)};
    auto opened = store::rocksdb_store::open(a.data_dir);
    if (!opened)
      throw std::runtime_error(opened.error().message());
    auto& local = *opened;
    store::pg_store database(settings);
    if (!database.migrate())
      throw std::runtime_error("cannot reach the token database (" + store::describe(settings) +
                               "): " + database.last_error());
    std::size_t copied = 0, seen = 0;
    for (std::string after;;) {
      auto page = local->scan(after, page_size);
      if (!page)
        throw std::runtime_error("cannot read the local store: " + page.error().message());
      std::string clash;
      auto added = database.import(*page, clash);
      if (!added && added.error() == store::errc::conflict)
        throw std::runtime_error("refusing to overwrite token " + clash +
                                 ": the database holds a different token with that id (" +
                                 std::to_string(copied) + " tokens copied before it)");
      if (!added)
        throw std::runtime_error("cannot write to the token database: " + database.last_error());
      copied += *added;
      seen += page->size();
      if (page->size() < page_size)
        break;
      after = page->back().id;
    }
    // After the tokens: a bootstrap token deleted or rotated in the standalone store stays so,
    // and its file does not make it again in the fleet.
    auto markers = local->markers();
    if (!markers)
      throw std::runtime_error("cannot read the local store: " + markers.error().message());
    if (!database.import_markers(*markers))
      throw std::runtime_error("cannot write to the token database: " + database.last_error());
    std::cout << "tokengate: copied " << copied << " tokens, " << seen - copied
              << " already present\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tokengate: " << e.what() << '\n';
    return 1;
  }
}

} // namespace tokengate::proxy
