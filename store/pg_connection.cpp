#include "store/pg_connection.hpp"

#include "store/hex.hpp"

#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <utility>

namespace tokengate::store {
namespace {

struct conninfo_deleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using conninfo = std::unique_ptr<PQconninfoOption, conninfo_deleter>;

conninfo parse(std::string_view url) {
  const std::string text(url);
  char* error = nullptr;
  conninfo options(PQconninfoParse(text.c_str(), &error));
  if (error != nullptr)
    PQfreemem(error); // its text may quote the password: never shown
  return options;
}

// libpq's messages end with a newline and may span lines: one line for a log.
std::string one_line(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  for (auto& c : s)
    if (c == '\n')
      c = ' ';
  return s;
}

} // namespace

std::string describe(const pg_settings& settings) {
  auto options = parse(settings.url);
  if (!options)
    return "(an unparsable connection string)";
  std::string out;
  for (auto* o = options.get(); o->keyword != nullptr; ++o) {
    const std::string_view key = o->keyword;
    if (o->val == nullptr || *o->val == '\0')
      continue;
    if (key == "host" || key == "hostaddr" || key == "port" || key == "dbname" || key == "user")
      out += (out.empty() ? "" : " ") + std::string(key) + "=" + o->val;
  }
  return out.empty() ? "(libpq defaults)" : out;
}

bool valid_url(std::string_view url) { return static_cast<bool>(parse(url)); }

std::string url_mistake(std::string_view url) {
  if (!valid_url(url))
    return "database_url is not a libpq connection string or URI (its text is not shown: it may "
           "hold a password)";
  const auto scheme = url.find("://");
  if (!url.starts_with("postgres") || scheme == std::string_view::npos)
    return {};
  // libpq ends the user name and password at the first '@' or '/', whichever comes first, and
  // the host and database name at the query's '?'. An '@' left between them means that a
  // password held an '@' or a '/': the rest of it would be taken for the host, port or
  // database name, and written into logs and errors as those.
  auto rest = url.substr(scheme + 3);
  if (const auto credentials = rest.find_first_of("@/"); credentials == std::string_view::npos)
    rest = {};
  else
    rest.remove_prefix(credentials + (rest[credentials] == '@' ? 1 : 0));
  if (rest.substr(0, rest.find('?')).find('@') != std::string_view::npos)
    return "database_url has more than one '@' before its host, or an '@' after a '/' of its user "
           "name or password: write an '@' of the user name or password as %40 and a '/' as %2F "
           "(its text is not shown: it may hold a password)";
  return {};
}

pg_connection::pg_connection(pg_settings settings) : settings_(std::move(settings)) {}

pg_connection::~pg_connection() { close(); }

void pg_connection::close() {
  if (conn_ != nullptr)
    PQfinish(conn_);
  conn_ = nullptr;
}

bool pg_connection::connected() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

boost::system::error_code pg_connection::lost(std::string why) {
  last_error_ = std::move(why);
  close();
  return errc::unavailable;
}

result<void> pg_connection::connect() {
  if (connected())
    return {};
  close();
  // Later keywords override earlier ones: our defaults first, then the URL, then the password
  // from database_password_file.
  const auto timeout = std::to_string(settings_.connect_timeout.count());
  std::vector<const char*> keys{"connect_timeout",     "application_name", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "dbname"};
  std::vector<const char*> values{timeout.c_str(),      "tokengate", "5", "2", "2",
                                  settings_.url.c_str()};
  if (!settings_.password.empty()) {
    keys.push_back("password");
    values.push_back(settings_.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
  if (conn_ == nullptr)
    return lost("out of memory");
  if (PQstatus(conn_) != CONNECTION_OK)
    return lost(one_line(PQerrorMessage(conn_)));
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  // A send must not wait without a deadline either: a server that stops reading would hold a
  // blocking send (and the thread) until TCP gave up, long after query_timeout.
  if (PQsetnonblocking(conn_, 1) != 0)
    return lost(one_line(PQerrorMessage(conn_)));
  // A session cut off inside a transaction (its sidecar gone) would otherwise hold its locks,
  // the change log's counter among them, until the server noticed the connection lost.
  const auto idle = std::to_string(settings_.idle_in_transaction_timeout.count());
  if (auto set = exec("SET idle_in_transaction_session_timeout = " + idle); !set) {
    close();
    return set.error();
  }
  return {};
}

result<void> pg_connection::begin() {
  // Named, not the server's default: a conditional write relies on READ COMMITTED's recheck
  // of a row another session changed (a stricter default would fail it instead).
  auto begun = exec("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = " +
                    std::to_string(settings_.lock_timeout.count()));
  if (!begun) {
    if (connected())
      (void)exec("ROLLBACK");
    return begun.error();
  }
  return {};
}

result<pg_rows> pg_connection::exec(std::string_view sql,
                                    std::initializer_list<std::optional<std::string_view>> params) {
  timed_out_ = false;
  if (!connected())
    return lost(last_error_.empty() ? "not connected" : last_error_);
  const std::string statement(sql);
  std::vector<std::string> owned;
  owned.reserve(params.size());
  std::vector<const char*> values;
  for (const auto& p : params) {
    owned.emplace_back(p ? *p : std::string_view{});
    values.push_back(p ? owned.back().c_str() : nullptr);
  }
  const int sent = params.size() == 0 ? PQsendQuery(conn_, statement.c_str())
                                      : PQsendQueryParams(conn_, statement.c_str(),
                                                          static_cast<int>(values.size()), nullptr,
                                                          values.data(), nullptr, nullptr, 0);
  if (sent == 0)
    return lost(one_line(PQerrorMessage(conn_)));
  // As PQexec, but never waiting longer than query_timeout: the statement goes out, and the
  // last result is the answer (the first error ends a list of statements).
  const auto due = std::chrono::steady_clock::now() + settings_.query_timeout;
  const auto time_left = [&due] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(due -
                                                                 std::chrono::steady_clock::now());
  };
  // libpq's flush protocol: while part of the statement is still to go, wait until the socket
  // takes more, and read what the server says meanwhile (it may answer before it has read all).
  for (int flushed = PQflush(conn_); flushed != 0; flushed = PQflush(conn_)) {
    if (flushed < 0)
      return lost(one_line(PQerrorMessage(conn_)));
    const auto left = time_left();
    pollfd p{PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      timed_out_ = true;
      return lost("the database did not take the whole statement within " +
                  std::to_string(settings_.query_timeout.count()) + " ms");
    }
    if ((p.revents & POLLIN) != 0 && PQconsumeInput(conn_) == 0)
      return lost(one_line(PQerrorMessage(conn_)));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> res(nullptr, &PQclear);
  for (;;) {
    while (PQisBusy(conn_) == 1) {
      const auto left = time_left();
      pollfd p{PQsocket(conn_), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
        timed_out_ = true;
        return lost("no answer from the database within " +
                    std::to_string(settings_.query_timeout.count()) + " ms");
      }
      if (PQconsumeInput(conn_) == 0)
        return lost(one_line(PQerrorMessage(conn_)));
    }
    PGresult* next = PQgetResult(conn_);
    if (next == nullptr)
      break;
    res.reset(next);
  }
  const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    if (!res || PQstatus(conn_) != CONNECTION_OK)
      return lost(one_line(PQerrorMessage(conn_)));
    last_error_ = one_line(PQresultErrorMessage(res.get()));
    const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::strcmp(state, "23505") == 0)
      return errc::conflict;
    return errc::io_error;
  }
  pg_rows rows(static_cast<std::size_t>(PQntuples(res.get())));
  const int columns = PQnfields(res.get());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto& row = rows[r];
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      const int ri = static_cast<int>(r);
      if (PQgetisnull(res.get(), ri, c))
        row.emplace_back();
      else
        row.emplace_back(std::string(PQgetvalue(res.get(), ri, c),
                                     static_cast<std::size_t>(PQgetlength(res.get(), ri, c))));
    }
  }
  return rows;
}

result<void> pg_connection::commit() {
  auto done = exec("COMMIT");
  if (done && lose_commit_reply_) {
    auto meanwhile = std::exchange(lose_commit_reply_, nullptr);
    meanwhile();
    done = lost("server closed the connection during COMMIT (test hook)");
  }
  if (!done)
    return done.error() == errc::unavailable ? errc::commit_unknown : done.error();
  return {};
}

int pg_connection::socket() const { return connected() ? PQsocket(conn_) : -1; }

result<std::vector<std::string>> pg_connection::take_notifications() {
  if (!connected())
    return lost(last_error_.empty() ? "not connected" : last_error_);
  if (PQconsumeInput(conn_) == 0)
    return lost(one_line(PQerrorMessage(conn_)));
  std::vector<std::string> payloads;
  while (PGnotify* n = PQnotifies(conn_)) {
    payloads.emplace_back(n->extra ? n->extra : "");
    PQfreemem(n);
  }
  if (PQstatus(conn_) != CONNECTION_OK)
    return lost(one_line(PQerrorMessage(conn_)));
  return payloads;
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

bool from_hex(std::string_view hex, std::uint8_t* out, std::size_t size) {
  if (hex.size() != size * 2)
    return false;
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

} // namespace tokengate::store
