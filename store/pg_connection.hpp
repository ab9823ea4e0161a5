#pragma once

#include "store/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn; // libpq's PGconn: libpq itself appears only in pg_connection.cpp

namespace tokengate::store {

/// Where the shared token database is: a libpq connection string or URI, and a password from
/// `database_password_file` (empty: libpq's own means, PGPASSWORD or PGPASSFILE).
struct pg_settings {
  std::string url;
  std::string password;
  std::chrono::seconds connect_timeout{2};
  /// How long a write transaction waits for a lock another session holds before it fails.
  std::chrono::milliseconds lock_timeout{10'000};
  /// The server ends a session idle inside a transaction this long (its client cut off
  /// mid-write), releasing the locks it held.
  std::chrono::milliseconds idle_in_transaction_timeout{30'000};
  /// The longest a statement waits for its answer (a server or network that stalled, the
  /// connection still open): then the session counts as lost (`unavailable`). Longer than
  /// `lock_timeout`, so that a lock wait ends on the server's side first.
  std::chrono::milliseconds query_timeout{15'000};
};

/// `url` for logs and errors: host, port, database and user only, never a password. A string
/// libpq cannot parse is described without its text (it may hold the password).
[[nodiscard]] std::string describe(const pg_settings& settings);

/// Whether libpq accepts `url` as a connection string or URI.
[[nodiscard]] bool valid_url(std::string_view url);

/// What is wrong with `url`, never quoting it (it may hold a password); "" when libpq takes it
/// as meant. A URI with two '@' before its host, or with a '/' in its password, is refused
/// although libpq takes it: libpq ends the password at the first '@' or '/', so the rest of it
/// would be taken for the host, port or database name, and written into logs and errors as one.
[[nodiscard]] std::string url_mistake(std::string_view url);

/// Rows of text values (NULL: nullopt), as a query returned them.
using pg_rows = std::vector<std::vector<std::optional<std::string>>>;

/// One PostgreSQL session. Not thread-safe: one owner at a time (callers hold a mutex).
/// Failures are values: `unavailable` when the session is lost or cannot be opened (the next
/// call reconnects), `conflict` on a unique violation, `io_error` for any other SQL error;
/// `last_error()` says why, never with a password.
class pg_connection {
public:
  explicit pg_connection(pg_settings settings);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Opens the session when it is not open. Blocks at most `connect_timeout`.
  [[nodiscard]] result<void> connect();
  [[nodiscard]] bool connected() const;
  void close();

  /// Runs one statement with text parameters (nullopt: NULL). Several statements separated by
  /// ';' are allowed without parameters.
  [[nodiscard]] result<pg_rows>
  exec(std::string_view sql, std::initializer_list<std::optional<std::string_view>> params = {});

  /// Opens a READ COMMITTED transaction whose lock waits end after `lock_timeout` (`io_error`).
  [[nodiscard]] result<void> begin();

  /// Ends the open transaction. `commit_unknown` when the session breaks meanwhile: the
  /// database may have committed or not (the reply was lost).
  [[nodiscard]] result<void> commit();
  /// Test hook: the next COMMIT that succeeds is answered as if the session had broken before
  /// its reply came (closed, `commit_unknown`), after running `meanwhile`.
  void lose_next_commit_reply(std::function<void()> meanwhile = [] {}) {
    lose_commit_reply_ = std::move(meanwhile);
  }

  /// The socket to poll() for notifications; -1 when not connected.
  [[nodiscard]] int socket() const;
  /// Reads what arrived on the socket and returns the payloads of the notifications received.
  [[nodiscard]] result<std::vector<std::string>> take_notifications();

  [[nodiscard]] const std::string& last_error() const { return last_error_; }
  [[nodiscard]] const pg_settings& settings() const { return settings_; }
  /// Whether the last statement lost the session by waiting `query_timeout` for the server (a
  /// stalled database), rather than finding it broken.
  [[nodiscard]] bool timed_out() const { return timed_out_; }

private:
  [[nodiscard]] boost::system::error_code lost(std::string why);

  pg_settings settings_;
  pg_conn* conn_ = nullptr;
  std::string last_error_;
  bool timed_out_ = false;
  std::function<void()> lose_commit_reply_;
};

/// Runs `body` between BEGIN and COMMIT (ROLLBACK when it fails). A session found broken at
/// BEGIN is reopened and the transaction tried once more: nothing of it was sent yet. One that
/// breaks during COMMIT is `commit_unknown` (see `commit`).
template <class F> auto in_transaction(pg_connection& c, F&& body) -> decltype(body()) {
  using out_type = decltype(body());
  const auto failed = [](boost::system::error_code ec) {
    return out_type(boost::system::in_place_error, ec);
  };
  for (int attempt = 0;; ++attempt) {
    if (auto opened = c.connect(); !opened)
      return failed(opened.error());
    auto begun = c.begin();
    if (!begun) {
      // A session found broken (the server restarted since its last use) is opened again,
      // once; one that stalled past query_timeout is not waited on a second time.
      if (begun.error() == errc::unavailable && attempt == 0 && !c.timed_out())
        continue;
      return failed(begun.error());
    }
    break;
  }
  auto out = body();
  if (!out) {
    if (c.connected())
      (void)c.exec("ROLLBACK");
    return out;
  }
  if (auto committed = c.commit(); !committed)
    return failed(committed.error());
  return out;
}

/// Hex text of bytes, for bytea parameters (`decode($1, 'hex')`).
[[nodiscard]] std::string to_hex(const std::uint8_t* data, std::size_t size);
/// Bytes from hex text; false when `hex` is not 2*`size` hex digits.
[[nodiscard]] bool from_hex(std::string_view hex, std::uint8_t* out, std::size_t size);

} // namespace tokengate::store
