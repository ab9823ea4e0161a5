// The PostgreSQL store beyond the shared contract: schema, change log, notifications, last use,
// migration of standalone tokens, and what it says when the database is gone.
#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <thread>

using namespace tokengate;
using test::digest_of;
using test::pg_cluster;
using test::record;

TEST_CASE("the schema is created once and migrating again changes nothing", "[store][pg]") {
  test::pg_fixture f;
  REQUIRE(f.owned.migrate());
  auto& pg = pg_cluster::shared();
  CHECK(pg.query("SELECT count(*) FROM tokengate_schema", f.database) == "1");
  CHECK(pg.query("SELECT max(version) FROM tokengate_schema", f.database) == "1");
  CHECK(pg.query("SELECT count(*) FROM tokengate_meta", f.database) == "1");
}

TEST_CASE("every record write appends to the change log in order, last use does not",
          "[store][pg]") {
  test::pg_fixture f;
  auto& pg = pg_cluster::shared();
  REQUIRE(f.store.put(record("a", 1)));
  REQUIRE(f.store.put(record("b", 2)));
  REQUIRE(f.store.put(record("a", 3, "rotated")));
  REQUIRE(f.store.erase("b").value());
  CHECK_FALSE(f.store.erase("b").value()); // nothing erased: nothing logged
  std::vector<store::usage> notes{{"a", 1'700'000'000}};
  REQUIRE(f.store.write_last_used(notes));

  CHECK(pg.query("SELECT string_agg(seq || ':' || id, ',' ORDER BY seq) FROM tokengate_changes",
                 f.database) == "1:a,2:b,3:a,4:b");
  CHECK(pg.query("SELECT last_seq FROM tokengate_meta", f.database) == "4");
  // Only digests are stored: 32 bytes, the one of the current value.
  CHECK(pg.query("SELECT length(digest) FROM tokengate_tokens WHERE id = 'a'", f.database) == "32");
}

TEST_CASE("a write notifies listeners with its seq", "[store][pg]") {
  test::pg_fixture f;
  store::pg_connection listener(
      {pg_cluster::shared().url(f.database), {}, std::chrono::seconds(5)});
  REQUIRE(listener.connect());
  REQUIRE(listener.exec("LISTEN tokengate_changes"));
  REQUIRE(f.store.put(record("a", 1)));
  REQUIRE(f.store.put(record("b", 2)));

  std::vector<std::string> seen;
  for (int i = 0; i < 100 && seen.size() < 2; ++i) {
    auto got = listener.take_notifications();
    REQUIRE(got);
    seen.insert(seen.end(), got->begin(), got->end());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(seen == std::vector<std::string>{"1", "2"});
}

TEST_CASE("last-use notes keep the later time", "[store][pg]") {
  test::pg_fixture f;
  REQUIRE(f.store.put(record("a", 1)));
  std::vector<store::usage> later{{"a", 2000}};
  std::vector<store::usage> earlier{{"a", 1000}};
  REQUIRE(f.store.write_last_used(later));
  REQUIRE(f.store.write_last_used(earlier)); // another sidecar's older note
  CHECK(f.store.get("a").value()->last_used == 2000);
  std::vector<store::usage> odd{{"quote\"and\\slash", 5}};
  CHECK(f.store.write_last_used(odd)); // ids are quoted in the array, whatever they hold
}

TEST_CASE("import copies standalone records once and refuses a different one with the same id",
          "[store][pg]") {
  test::pg_fixture f;
  std::vector<store::token_record> local{record("a", 1, "one"), record("b", 2, "two")};
  local[1].last_used = 1234;
  std::string clash;
  CHECK(f.owned.import(local, clash).value() == 2);
  CHECK(f.owned.import(local, clash).value() == 0); // idempotent
  CHECK(f.store.get("b").value()->last_used == 1234);

  std::vector<store::token_record> other{record("a", 9, "someone else's")};
  auto refused = f.owned.import(other, clash);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == store::errc::conflict);
  CHECK(clash == "a");
  CHECK(f.store.get("a").value()->payload == "one");
}

TEST_CASE("an unreachable database fails every call with 'unavailable', never showing the "
          "password",
          "[store][pg]") {
  const std::string url = "postgresql://tokengate:Hunter2-secret@127.0.0.1:1/postgres";
  store::pg_store dead({url, {}, std::chrono::seconds(1)});
  auto put = dead.put(record("a", 1));
  REQUIRE_FALSE(put);
  CHECK(put.error() == store::errc::unavailable);
  CHECK(dead.get("a").error() == store::errc::unavailable);
  CHECK_FALSE(dead.migrate());
  CHECK_FALSE(dead.last_error().empty());
  CHECK(dead.last_error().find("Hunter2") == std::string::npos);

  const store::pg_settings s{url, {}, std::chrono::seconds(1)};
  CHECK(store::describe(s) == "user=tokengate dbname=postgres host=127.0.0.1 port=1");
  CHECK(store::describe({"host=db password=Hunter2-secret user=x", {}, {}}) == "user=x host=db");
  CHECK(store::describe({"host=db password='Hunter2 unterminated", {}, {}}).find("Hunter2") ==
        std::string::npos);
  CHECK_FALSE(store::valid_url("host=db password='Hunter2 unterminated"));
  CHECK_THAT(store::url_mistake("host=db password='Hunter2 unterminated"),
             Catch::Contains("not a libpq connection string"));
  // libpq ends a password at its first '@': the rest would be taken for the host name.
  const auto two = store::url_mistake("postgresql://tg:Half@Hunter2@db:5432/x");
  CHECK_THAT(two, Catch::Contains("more than one '@' before its host"));
  CHECK(two.find("Hunter2") == std::string::npos);
  CHECK(store::url_mistake("postgresql://tg:Half%40Hunter2@db:5432/x").empty());
  // libpq ends a password at a '/' too (base64 passwords hold them): it would take
  // "Half" for the port and "Hunter2@db:5432/x" for the database name, both logged.
  CHECK(store::describe({"postgresql://tg:Half/Hunter2@db:5432/x", {}, {}}).find("Hunter2") !=
        std::string::npos);
  const auto slash = store::url_mistake("postgresql://tg:Half/Hunter2@db:5432/x");
  CHECK_THAT(slash, Catch::Contains("as %2F"));
  CHECK(slash.find("Hunter2") == std::string::npos);
  CHECK(store::url_mistake("postgresql://tg:Half%2FHunter2@db:5432/x").empty());
  // A '?' before the password's second '@' does not hide it.
  CHECK_FALSE(store::url_mistake("postgresql://tg:Ha?lf@Hunter2@db:5432/x").empty());
  CHECK(store::url_mistake("postgresql://tg:Ha?lf@db:5432/x").empty()); // libpq takes it whole
  CHECK(store::url_mistake("postgres://db/x?options=a@b").empty()); // after the host: not a user
  CHECK(store::url_mistake("host=db user=a@b").empty());
}

TEST_CASE("a password from database_password_file is used", "[store][pg]") {
  auto& pg = pg_cluster::shared();
  const auto db = pg.create_database();
  store::pg_store without({pg.url_without_password(db), {}, std::chrono::seconds(5)});
  CHECK_FALSE(without.migrate()); // the cluster wants a password
  CHECK_THAT(without.last_error(), Catch::Contains("password"));
  store::pg_store with(
      {pg.url_without_password(db), std::string(pg_cluster::password), std::chrono::seconds(5)});
  CHECK(with.migrate());
  CHECK_FALSE(with.has_marker("x").value());
}

TEST_CASE("a write waiting on a lock another session holds gives up after lock_timeout, and "
          "changes nothing",
          "[store][pg]") {
  test::pg_fixture f;
  auto& pg = pg_cluster::shared();
  store::pg_settings impatient{pg.url(f.database), {}, std::chrono::seconds(5)};
  impatient.lock_timeout = std::chrono::milliseconds(100);
  store::pg_store writer(impatient);
  REQUIRE(writer.put(record("a", 1)));

  // Another sidecar's write, its transaction open: it holds the change log's counter.
  store::pg_connection held({pg.url(f.database), {}, std::chrono::seconds(5)});
  REQUIRE(held.connect());
  REQUIRE(held.begin());
  REQUIRE(held.exec("UPDATE tokengate_meta SET last_seq = last_seq"));
  auto refused = writer.put(record("b", 2));
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == store::errc::io_error);
  CHECK(writer.last_error().find("lock timeout") != std::string::npos);
  REQUIRE(held.exec("ROLLBACK"));

  CHECK_FALSE(writer.get("b").value().has_value());
  REQUIRE(writer.put(record("b", 2))); // the session is usable again
  CHECK(pg.query("SELECT last_seq FROM tokengate_meta", f.database) == "2");
}

TEST_CASE("a session left idle inside a transaction is ended by the server, releasing its locks",
          "[store][pg]") {
  test::pg_fixture f;
  auto& pg = pg_cluster::shared();
  CHECK(pg.query("SELECT count(*) FROM tokengate_meta", f.database) == "1");
  store::pg_connection defaults({pg.url(f.database), {}, std::chrono::seconds(5)});
  REQUIRE(defaults.connect());
  CHECK(defaults.exec("SHOW idle_in_transaction_session_timeout").value().at(0).at(0) == "30s");

  // A sidecar cut off in the middle of its write: its session holds the counter, idle.
  store::pg_settings brief{pg.url(f.database), {}, std::chrono::seconds(5)};
  brief.idle_in_transaction_timeout = std::chrono::milliseconds(200);
  store::pg_connection cut_off(brief);
  REQUIRE(cut_off.connect());
  REQUIRE(cut_off.begin());
  REQUIRE(cut_off.exec("UPDATE tokengate_meta SET last_seq = last_seq"));

  // Another sidecar's write waits for the lock (at most its 10 s lock_timeout), then is taken
  // once the server has ended the idle session.
  REQUIRE(f.store.put(record("a", 1)));
  CHECK(f.store.get("a").value().has_value());
  CHECK_FALSE(cut_off.exec("COMMIT")); // its session is gone: nothing of it committed
}

namespace {

// Settings whose statements wait 300 ms at most for the server.
store::pg_settings brief_queries(const test::pg_fixture& f) {
  store::pg_settings settings{pg_cluster::shared().url(f.database), {}, std::chrono::seconds(5)};
  settings.query_timeout = std::chrono::milliseconds(300);
  return settings;
}

// The process id of the server process behind `c`'s session.
int backend_pid(store::pg_connection& c) {
  return std::stoi(c.exec("SELECT pg_backend_pid()").value().at(0).at(0).value());
}

} // namespace

TEST_CASE("a statement the server does not answer ends after query_timeout, the session lost",
          "[store][pg]") {
  test::pg_fixture f;
  store::pg_connection c(brief_queries(f));
  REQUIRE(c.connect());
  const auto pid = backend_pid(c);
  // The session's server process stops answering; its connection stays open.
  REQUIRE(::kill(pid, SIGSTOP) == 0);
  const auto r = c.exec("SELECT 1");
  ::kill(pid, SIGCONT);
  REQUIRE_FALSE(r);
  CHECK(r.error() == store::errc::unavailable);
  CHECK_FALSE(c.connected());
  CHECK(c.last_error() == "no answer from the database within 300 ms");
  // The next call opens a new session.
  REQUIRE(c.connect());
  CHECK(c.exec("SELECT 1").value().at(0).at(0) == "1");
}

TEST_CASE("a write to a database that stops answering fails after query_timeout, not later",
          "[store][pg]") {
  test::pg_fixture f;
  store::pg_store stalled(brief_queries(f)); // 300 ms a statement, 5 s to connect
  REQUIRE(stalled.put(record("a", 1)));      // its session open and used
  // The whole server stalls, its connections open: BEGIN gets no answer. A second try on a new
  // session would wait connect_timeout more for a server that answers nothing.
  auto& pg = pg_cluster::shared();
  pg.freeze();
  const auto began = std::chrono::steady_clock::now();
  const auto put = stalled.put(record("b", 2));
  const auto took = std::chrono::steady_clock::now() - began;
  pg.thaw();
  REQUIRE_FALSE(put);
  CHECK(put.error() == store::errc::unavailable);
  CHECK(took < std::chrono::seconds(2));
  CHECK(stalled.last_error() == "no answer from the database within 300 ms");
  CHECK_FALSE(stalled.get("b").value()); // nothing of it was written
  // A session found broken (here: closed by the stall's timeout) is opened again by the next
  // write, which goes through.
  REQUIRE(stalled.put(record("b", 2)));
}

TEST_CASE("a statement larger than the socket takes, to a server that stops reading, ends after "
          "query_timeout",
          "[store][pg]") {
  test::pg_fixture f;
  store::pg_connection c(brief_queries(f));
  REQUIRE(c.connect());
  const auto pid = backend_pid(c);
  REQUIRE(::kill(pid, SIGSTOP) == 0);
  // A send that waits for ever (the defect this test is for) is let go after 10 s, so that the
  // test fails instead of hanging the suite, and the shared server's process goes on.
  std::promise<void> sent;
  auto watchdog = std::async(std::launch::async, [pid, done = sent.get_future()] {
    if (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout)
      ::kill(pid, SIGCONT);
  });
  // 64 MiB: far more than the loopback socket's buffers hold, so the send has to wait.
  const std::string big(64 << 20, 'x');
  const auto r = c.exec("SELECT length($1)", {big});
  sent.set_value();
  watchdog.get();
  ::kill(pid, SIGCONT);
  REQUIRE_FALSE(r);
  CHECK(r.error() == store::errc::unavailable);
  CHECK_FALSE(c.connected());
  CHECK(c.last_error() == "the database did not take the whole statement within 300 ms");
  REQUIRE(c.connect());
  CHECK(
      c.exec("SELECT length($1)", {std::string_view(big).substr(0, 1 << 20)}).value().at(0).at(0) ==
      "1048576");
}

TEST_CASE("a prune waits a second at most for a writer's lock, and keeps its session",
          "[store][pg]") {
  test::pg_fixture f;
  REQUIRE(f.store.put(record("a", 1))); // one change-log entry to prune
  const store::pg_settings settings{
      pg_cluster::shared().url(f.database), {}, std::chrono::seconds(5)};
  store::pg_connection writer(settings); // a write under way holds the meta row
  REQUIRE(writer.connect());
  REQUIRE(writer.exec("BEGIN"));
  REQUIRE(writer.exec("UPDATE tokengate_meta SET last_seq = last_seq"));
  store::pg_connection follower(settings);
  REQUIRE(follower.connect());
  const auto held = store::prune_log(follower, std::chrono::seconds(0));
  REQUIRE_FALSE(held);
  CHECK(held.error() == store::errc::io_error);
  CHECK(follower.connected());
  REQUIRE(writer.exec("ROLLBACK"));
  const auto pruned = store::prune_log(follower, std::chrono::seconds(0));
  REQUIRE(pruned);
  CHECK(*pruned == 1);
}
