// Fleet mode end to end: three sidecars on one PostgreSQL, start-up races, moving a standalone
// store in, and secrets.
#include "tests/e2e/fleet_support.hpp"

using namespace tokengate;
using test::call;
using test::eventually;

TEST_CASE("a change on one sidecar is enforced on the others", "[e2e][fleet]") {
  test::fleet_env fleet;
  fleet.start_a_and_b();
  fleet.start("c");

  // Create on A: usable on B and C.
  auto [id, key] = fleet.create("a");
  CHECK(fleet.status("a", key) == 200); // read-your-writes on the sidecar that took it
  CHECK(eventually([&] { return fleet.status("b", key) == 200; }));
  CHECK(eventually([&] { return fleet.status("c", key) == 200; }));

  // A permission change on C: enforced on A.
  auto changed = call(fleet["c"].port(), "POST", "/api-tokens/" + id, fleet.admin(),
                      R"({"name":"t","permissions":["RuleRead"]})");
  REQUIRE(changed.status == 200);
  CHECK(eventually([&] { return fleet.status("a", key) == 403; }));
  CHECK(
      call(fleet["a"].port(), "GET", "/api-tokens/" + id, fleet.admin()).json().at("permissions") ==
      boost::json::array{"RuleRead"});

  // Rotation on A: the old value fails on B, the new one works there.
  auto rotated = call(fleet["a"].port(), "POST", "/api-tokens/" + id + "/rotate", fleet.admin());
  REQUIRE(rotated.status == 200);
  const std::string fresh(rotated.json().at("value").as_string());
  CHECK(eventually([&] { return fleet.status("b", key) == 401; }));
  CHECK(eventually([&] { return fleet.status("b", fresh, "/open") == 200; }));

  // Delete on B: refused on A and C.
  REQUIRE(call(fleet["b"].port(), "DELETE", "/api-tokens/" + id, fleet.admin()).status == 204);
  CHECK(eventually([&] { return fleet.status("a", fresh, "/open") == 401; }));
  CHECK(eventually([&] { return fleet.status("c", fresh, "/open") == 401; }));
  CHECK(call(fleet["c"].port(), "GET", "/api-tokens/" + id, fleet.admin()).status == 404);

  // The bootstrap key was adopted once for the whole fleet.
  CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens", "postgres") == "1");
}

TEST_CASE("ten sidecars starting at once on an empty database: one schema, one bootstrap token",
          "[e2e][fleet]") {
  test::temp_dir dir;
  test::pg_cluster pg;
  test::test_upstream upstream;
  std::vector<std::unique_ptr<test::process>> sidecars;
  for (int i = 0; i < 10; ++i) {
    const auto home = dir / std::to_string(i);
    std::filesystem::create_directories(home);
    sidecars.push_back(std::make_unique<test::process>(
        std::vector<std::string>{test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0",
                                 "--admin-listen", "127.0.0.1:0", "--upstream",
                                 "http://127.0.0.1:" + std::to_string(upstream.port()),
                                 "--data-dir", "data", "--database-url", pg.url()},
        home));
  }
  for (auto& s : sidecars) {
    INFO(s->err());
    REQUIRE(s->wait_for_output("\"msg\":\"listening\"", std::chrono::seconds(60)));
  }
  CHECK(pg.query("SELECT count(*) FROM tokengate_schema", "postgres") == "1");
  CHECK(pg.query("SELECT count(*) FROM tokengate_meta", "postgres") == "1");
  CHECK(pg.query("SELECT count(*) FROM tokengate_tokens", "postgres") == "1");
  int files = 0;
  for (int i = 0; i < 10; ++i)
    files += std::filesystem::exists(dir / std::to_string(i) / "data" / "admin-token");
  CHECK(files == 1);
}

TEST_CASE("migrate copies a standalone store's tokens once and refuses to overwrite others",
          "[e2e][fleet][migrate]") {
  test::fleet_env fleet;
  std::string key, old_admin;
  std::filesystem::create_directories(fleet.dir("old"));
  {
    test::gate_process standalone(fleet.dir("old"), fleet.upstream().port());
    old_admin = standalone.admin_key();
    auto r = call(standalone.port(), "POST", "/api-tokens", old_admin,
                  R"({"name":"kept","permissions":["AlertRead","OrganizationAPITokenModify"]})");
    REQUIRE(r.status == 200);
    key = std::string(r.json().at("value").as_string());
    // The bootstrap token is deleted: its file must not bring it back, in the fleet either.
    const auto self = call(standalone.port(), "GET", "/api-tokens/self", old_admin);
    REQUIRE(self.status == 200);
    const std::string bootstrap_id(self.json().at("id").as_string());
    REQUIRE(call(standalone.port(), "DELETE", "/api-tokens/" + bootstrap_id, key).status == 204);
    REQUIRE(standalone.terminate() == 0);
  }
  const auto data = (fleet.dir("old") / "data").string();
  const auto migrate = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> args{test::tokengate_binary(), "migrate",       "--data-dir", data,
                                  "--database-url",         fleet.pg().url()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = std::make_unique<test::process>(args, fleet.dir("old"));
    REQUIRE(p->wait(std::chrono::seconds(30)).has_value());
    return p;
  };
  auto first = migrate();
  CHECK(first->wait(std::chrono::seconds(0)) == 0);
  CHECK_THAT(first->out(), Catch::Contains("copied 1 tokens, 0 already present"));
  auto again = migrate();
  CHECK(again->wait(std::chrono::seconds(0)) == 0);
  CHECK_THAT(again->out(), Catch::Contains("copied 0 tokens, 1 already present"));

  // The migrated key works on a fleet sidecar with a new data dir.
  fleet.start("a");
  CHECK(fleet.status("a", key) == 200);
  // A sidecar given the old bootstrap file does not make the deleted token again.
  auto& b = fleet.start(
      "b", {"--bootstrap-token-file", (fleet.dir("old") / "data" / "admin-token").string()});
  CHECK(call(b.port(), "GET", "/api-tokens/self", old_admin).status == 401);
  CHECK(call(b.port(), "GET", "/api-tokens/self", key).status == 200);

  // A database whose token of the same id differs: refused, nothing overwritten.
  (void)fleet.pg().query("UPDATE tokengate_tokens SET payload = payload || ' ' ", "postgres");
  auto refused = migrate();
  CHECK(refused->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(refused->err(), Catch::Contains("refusing to overwrite token"));
  CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens WHERE payload LIKE '% '",
                         "postgres") == "2");
}

TEST_CASE("no database password and no key value reaches a log, an error or the database",
          "[e2e][fleet][secrets]") {
  test::fleet_env fleet;
  const std::string password(test::pg_cluster::password);
  std::filesystem::create_directories(fleet.dir("z"));
  // A password file, and a URL without it.
  std::ofstream(fleet.dir("pw")) << password << '\n';
  auto& a = fleet.start("a", {"--database-url", fleet.pg().url_without_password(),
                              "--database-password-file", fleet.dir("pw").string()});
  auto [id, key] = fleet.create("a");
  CHECK(fleet.status("a", key) == 200);
  CHECK(a.terminate() == 0);
  CHECK(a.proc().out().find(password) == std::string::npos);
  CHECK(a.proc().err().find(password) == std::string::npos);
  CHECK_THAT(a.proc().out(), Catch::Contains("user=tokengate"));

  // A wrong password in the URL: the start says why, without it.
  const std::string wrong = "Wrong-Pass-1234";
  test::process bad({test::tokengate_binary(), "serve", "--listen", "127.0.0.1:0", "--admin-listen",
                     "127.0.0.1:0", "--data-dir", "data", "--database-url",
                     "postgresql://tokengate:" + wrong +
                         "@127.0.0.1:" + std::to_string(fleet.pg().port()) + "/postgres"},
                    fleet.dir("z"));
  REQUIRE(bad.wait_for_output("not ready"));
  CHECK_THAT(bad.out(), Catch::Contains("password authentication failed"));
  CHECK(bad.out().find(wrong) == std::string::npos);
  CHECK(bad.err().find(wrong) == std::string::npos);
  // Nor in its command line, which every local user can read (ps): the URL is blanked.
  std::ifstream cmdline("/proc/" + std::to_string(bad.pid()) + "/cmdline");
  const std::string seen((std::istreambuf_iterator<char>(cmdline)), {});
  CHECK_THAT(seen, Catch::Contains("--database-url"));
  CHECK(seen.find(wrong) == std::string::npos);

  // The database holds digests, never values.
  const auto everything = fleet.pg().query(
      "SELECT string_agg(id || payload || encode(digest, 'escape'), '') FROM tokengate_tokens",
      "postgres");
  CHECK(everything.find(key) == std::string::npos);
  CHECK(everything.find(fleet.admin()) == std::string::npos);
}

TEST_CASE("lastUsedAt reaches the database in the background, outside the change log",
          "[e2e][fleet]") {
  test::fleet_env fleet;
  fleet.start("a");
  auto [id, key] = fleet.create("a");
  const auto logged = fleet.pg().query("SELECT last_seq FROM tokengate_meta", "postgres");
  CHECK(fleet.status("a", key) == 200);
  const auto last_used = [&] {
    return fleet.pg().query("SELECT last_used FROM tokengate_tokens WHERE id = '" + id + "'",
                            "postgres");
  };
  CHECK(eventually([&] { return !last_used().empty(); }, std::chrono::seconds(5)));
  const auto shown = call(fleet["a"].port(), "GET", "/api-tokens/" + id, fleet.admin()).json();
  CHECK(shown.as_object().contains("lastUsedAt"));
  CHECK(fleet.pg().query("SELECT last_seq FROM tokengate_meta", "postgres") == logged);
}

TEST_CASE("fleet start-up mistakes are one line that never shows a password", "[e2e][fleet][cli]") {
  test::temp_dir dir;
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), test::tokengate_binary());
    auto p = std::make_unique<test::process>(args, dir.path());
    REQUIRE(p->wait(std::chrono::seconds(20)).has_value());
    return p;
  };
  const std::vector<std::string> serve{"serve",       "--listen",   "127.0.0.1:0", "--admin-listen",
                                       "127.0.0.1:0", "--data-dir", "data"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = serve;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };

  auto unparsable = with({"--database-url", "host=db password='Secret-9 unterminated"});
  CHECK(unparsable->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(unparsable->err(), Catch::Contains("database_url is not a libpq connection string"));
  CHECK(unparsable->err().find("Secret-9") == std::string::npos);
  CHECK(unparsable->out().find("Secret-9") == std::string::npos);

  // An '@' of the password not written %40: libpq would take the rest for the host name.
  auto two_ats = with({"--database-url", "postgresql://tg:Half@Secret-7@127.0.0.1:1/postgres"});
  CHECK(two_ats->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(two_ats->err(), Catch::Contains("more than one '@' before its host"));
  CHECK(two_ats->err().find("Secret-7") == std::string::npos);
  CHECK(two_ats->out().find("Secret-7") == std::string::npos);
  // A '/' of the password (base64 passwords hold them): libpq would take what precedes it for
  // the port and the rest for the database name, and the start would log both.
  auto slash = with({"--database-url", "postgresql://tg:Half/Secret-6@127.0.0.1:1/postgres"});
  CHECK(slash->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(slash->err(), Catch::Contains("as %2F"));
  CHECK(slash->err().find("Secret-6") == std::string::npos);
  CHECK(slash->out().find("Secret-6") == std::string::npos);

  auto no_file = with({"--database-url", "host=127.0.0.1 port=1", "--database-password-file",
                       (dir / "missing").string()});
  CHECK(no_file->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(no_file->err(), Catch::Contains("cannot read database_password_file"));

  auto staleness_alone = with({"--max-staleness-ms", "5000"});
  CHECK(staleness_alone->wait(std::chrono::seconds(0)) == 2);
  CHECK_THAT(staleness_alone->err(), Catch::Contains("need database_url"));

  auto migrate_bare = run({"migrate", "--data-dir", "data"});
  CHECK(migrate_bare->wait(std::chrono::seconds(0)) == 2);
  CHECK_THAT(migrate_bare->err(), Catch::Contains("needs --data-dir and --database-url"));
  auto migrate_nothing =
      run({"migrate", "--data-dir", (dir / "nothing").string(), "--database-url", "host=x"});
  CHECK(migrate_nothing->wait(std::chrono::seconds(0)) == 1);
  CHECK_THAT(migrate_nothing->err(), Catch::Contains("no token store in"));
}

TEST_CASE("tokens a fleet's rows give ids of their own are listed and paged past",
          "[e2e][fleet][paging]") {
  test::fleet_env fleet;
  const auto port = fleet.start("a").port();
  // Rows written around the API, with ids of their own (README "Rows held wrong": any id of 1 to
  // 128 letters, digits, '-', '_' or '.' serves), each with its change-log entry.
  for (const std::string id : {"ops-1", "ops-2"}) {
    (void)fleet.pg().query("INSERT INTO tokengate_tokens (id, digest, payload) SELECT '" + id +
                               "', sha256('" + id + "'), payload FROM tokengate_tokens LIMIT 1",
                           "postgres");
    (void)fleet.pg().query("WITH s AS (UPDATE tokengate_meta SET last_seq = last_seq + 1 "
                           "RETURNING last_seq) INSERT INTO tokengate_changes (seq, id) "
                           "SELECT last_seq, '" +
                               id + "' FROM s",
                           "postgres");
  }
  REQUIRE(eventually(
      [&] { return call(port, "GET", "/api-tokens/ops-2", fleet.admin()).status == 200; }));

  // The bootstrap token's UUID sorts first: the first page ends on "ops-1".
  auto first = call(port, "GET", "/api-tokens?limit=2", fleet.admin());
  REQUIRE(first.status == 200);
  const auto page = first.json().as_object();
  REQUIRE(page.at("results").as_array().size() == 2);
  CHECK(page.at("results").as_array()[1].at("id") == "ops-1");
  REQUIRE(page.contains("next"));
  auto second =
      call(port, "GET", "/api-tokens?limit=2&cursor=" + std::string(page.at("next").as_string()),
           fleet.admin());
  INFO(second.body);
  REQUIRE(second.status == 200);
  const auto rest = second.json().at("results").as_array();
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].at("id") == "ops-2");
  CHECK_FALSE(second.json().as_object().contains("next"));
}
