#include "tests/support/pg_cluster.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tokengate::test {
namespace {

constexpr std::string_view bin = "/usr/lib/postgresql/15/bin/";

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no free port");
  ::close(fd);
  return ntohs(a.sin_port);
}

// PostgreSQL will not run as root: as root, the cluster belongs to `nobody`.
const passwd* owner() { return ::geteuid() == 0 ? ::getpwnam("nobody") : nullptr; }

// Forks `args` as the owner, in a session of its own (so that kill() reaches every backend).
// What the child needs is made before fork(), which the child follows with async-signal-safe
// calls only: a test's other threads may hold a lock (the allocator's) at the fork.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const passwd* who = owner();
  const uid_t uid = who ? who->pw_uid : 0;
  const gid_t gid = who ? who->pw_gid : 0;
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  ::setsid();
  if (who != nullptr && (::setgid(gid) != 0 || ::setuid(uid) != 0))
    ::_exit(126);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0)
    ::_exit(126);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

void give_to_owner(const std::filesystem::path& p) {
  if (const auto* who = owner())
    if (::chown(p.c_str(), who->pw_uid, who->pw_gid) != 0)
      throw std::runtime_error("cannot chown " + p.string());
}

} // namespace

void pg_cluster::run_as_owner(const std::vector<std::string>& args, const std::string& log) const {
  const pid_t pid = spawn(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(args[0] + " failed; see " + log);
}

pg_cluster::pg_cluster() {
  give_to_owner(dir_.path());
  const auto pwfile = dir_ / "pw";
  std::ofstream(pwfile) << password << '\n';
  give_to_owner(pwfile);
  run_as_owner({std::string(bin) + "initdb", "-D", (dir_ / "data").string(), "-U",
                std::string(user), "--pwfile", pwfile.string(), "--auth-local=trust",
                "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync"},
               (dir_ / "initdb.log").string());
  port_ = free_port();
  start();
}

pg_cluster::~pg_cluster() {
  if (pid_ > 0) {
    ::kill(pid_, SIGINT); // fast shutdown
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pid_ > 0)
      kill();
  }
}

pg_cluster& pg_cluster::shared() {
  static pg_cluster instance;
  return instance;
}

void pg_cluster::start() {
  pid_ = spawn({std::string(bin) + "postgres", "-D", (dir_ / "data").string(), "-p",
                std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-c",
                "unix_socket_directories=", "-c", "fsync=off", "-c", "full_page_writes=off", "-c",
                "max_connections=200"},
               (dir_ / "postgres.log").string());
  wait_ready();
}

void pg_cluster::kill() {
  if (pid_ <= 0)
    return;
  ::kill(-pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  // The backends died with it; give the kernel a moment to release their memory.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

namespace {

// The postmaster and its children: each backend is a session of its own (PostgreSQL calls
// setsid() in every child), so a signal to the postmaster's group does not reach them.
void signal_server(pid_t postmaster, int signal) {
  if (postmaster <= 0)
    return;
  ::kill(postmaster, signal);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line))
      continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    const auto close = line.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t parent = 0;
    if (rest >> state >> parent && parent == postmaster)
      ::kill(static_cast<pid_t>(std::stol(name)), signal);
  }
}

} // namespace

void pg_cluster::freeze() { signal_server(pid_, SIGSTOP); }

void pg_cluster::thaw() { signal_server(pid_, SIGCONT); }

void pg_cluster::wait_ready() const {
  const auto conninfo = url();
  for (int i = 0; i < 600; ++i) {
    if (PQping(conninfo.c_str()) == PQPING_OK)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("PostgreSQL did not start; see " + (dir_ / "postgres.log").string());
}

std::string pg_cluster::url(std::string_view database) const {
  return "postgresql://" + std::string(user) + ":" + std::string(password) +
         "@127.0.0.1:" + std::to_string(port_) + "/" + std::string(database);
}

std::string pg_cluster::url_without_password(std::string_view database) const {
  return "postgresql://" + std::string(user) + "@127.0.0.1:" + std::to_string(port_) + "/" +
         std::string(database);
}

std::string pg_cluster::create_database() {
  const auto name = "t" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  (void)query("CREATE DATABASE " + name, "postgres");
  return name;
}

std::string pg_cluster::query(std::string_view sql, std::string_view database) const {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(url(database).c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(c.get()));
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), std::string(sql).c_str()),
                                                  &PQclear);
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw std::runtime_error(std::string("query failed: ") + PQerrorMessage(c.get()));
  if (status == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 && PQnfields(r.get()) > 0)
    return PQgetvalue(r.get(), 0, 0);
  return {};
}

} // namespace tokengate::test
