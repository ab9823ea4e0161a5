#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tokengate::test {
namespace {

long status_field(pid_t pid, std::string_view name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(name))
      return std::stol(line.substr(name.size()));
  return -1;
}

} // namespace

std::string tokengate_binary() { return TOKENGATE_BINARY; }

process::process(const std::vector<std::string>& args, const std::filesystem::path& dir,
                 const std::vector<std::pair<std::string, std::string>>& env) {
  static int serial = 0;
  const auto stem = "proc" + std::to_string(++serial);
  out_ = dir / (stem + ".out");
  err_ = dir / (stem + ".err");
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e)
    environment.emplace_back(*e);
  for (const auto& [k, v] : env)
    environment.push_back(k + "=" + v);
  // Everything the child needs is made before fork(): the test runs threads (an upstream, a
  // sidecar), and a child that allocated could wait forever on a lock one of them held at the
  // fork. After it, the child makes async-signal-safe calls only.
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : environment)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string out_path = out_.string(), err_path = err_.string(), dir_path = dir.string();

  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || err < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0)
      ::_exit(126);
    if (::chdir(dir_path.c_str()) != 0)
      ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
}

process::~process() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    (void)wait(std::chrono::seconds(10));
  }
}

void process::signal(int sig) const { ::kill(pid_, sig); }

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int raw = 0;
    const auto r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string process::out() const { return read_file(out_); }
std::string process::err() const { return read_file(err_); }

bool process::wait_for_output(std::string_view text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (out().find(text) != std::string::npos)
      return true;
    if (wait(std::chrono::milliseconds(0)))
      return out().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

long process::rss_kib() const { return status_field(pid_, "VmRSS:"); }
long process::peak_rss_kib() const { return status_field(pid_, "VmHWM:"); }

} // namespace tokengate::test
