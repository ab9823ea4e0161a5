#pragma once

#include "tests/support/temp_dir.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::test {

/// A throwaway PostgreSQL cluster: `initdb` in a temp dir, `postgres` on a free loopback port,
/// password (SCRAM) authentication for user `tokengate`. Run as `nobody` when the tests run as
/// root (PostgreSQL refuses to run as root). Stopped and removed on destruction.
class pg_cluster {
public:
  static constexpr std::string_view user = "tokengate";
  static constexpr std::string_view password = "pg-Secret-7f3a9";

  pg_cluster();
  ~pg_cluster();
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  /// One cluster for the whole test process, started on first use.
  static pg_cluster& shared();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// A URI with the password in it.
  [[nodiscard]] std::string url(std::string_view database = "postgres") const;
  /// The same without the password (it then comes from a file or PGPASSWORD).
  [[nodiscard]] std::string url_without_password(std::string_view database = "postgres") const;

  /// A new, empty database; returns its name.
  [[nodiscard]] std::string create_database();
  /// The first column of the first row of `sql` ("" when no row); fails the test on an error.
  [[nodiscard]] std::string query(std::string_view sql, std::string_view database) const;

  /// SIGKILL of the postmaster and every backend at once.
  void kill();
  /// SIGSTOP of the postmaster and every backend: a server (or a network) that stops
  /// answering while every connection stays open. `thaw` lets it go on.
  void freeze();
  void thaw();
  /// Starts the server again (crash recovery after `kill`) and waits until it answers.
  void start();
  [[nodiscard]] bool running() const { return pid_ > 0; }

private:
  void run_as_owner(const std::vector<std::string>& args, const std::string& log) const;
  void wait_ready() const;

  temp_dir dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  int databases_ = 0;
};

} // namespace tokengate::test
