// The real binary's event loops: each accepts its own connections
// (proxy/detail/shared_accept.hpp), so one that gets no CPU holds up no new connection.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <catch2/catch.hpp>

#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace tokengate;
using namespace std::chrono_literals;

namespace {

/// The thread ids of process `pid` whose name (/proc/PID/task/TID/comm) is `name`.
std::vector<pid_t> threads_named(pid_t pid, const std::string& name) {
  std::vector<pid_t> found;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string text;
    std::getline(comm, text);
    if (text == name)
      found.push_back(static_cast<pid_t>(std::stol(task.path().filename().string())));
  }
  return found;
}

/// One thread of another process held stopped (ptrace), as a thread the system gives no CPU
/// is, until this goes. `held()` is false where this process may not trace it (Yama's
/// ptrace_scope above 1 without root); the reason is in `why()`.
class stopped_thread {
public:
  explicit stopped_thread(pid_t tid) : tid_(tid) {
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
      why_ = std::strerror(errno);
      return;
    }
    int status = 0;
    held_ = ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0 &&
            ::waitpid(tid, &status, __WALL) == tid && WIFSTOPPED(status);
    if (!held_)
      why_ = std::strerror(errno);
  }
  ~stopped_thread() { ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr); }
  stopped_thread(const stopped_thread&) = delete;
  stopped_thread& operator=(const stopped_thread&) = delete;

  [[nodiscard]] bool held() const { return held_; }
  [[nodiscard]] const std::string& why() const { return why_; }

private:
  pid_t tid_;
  bool held_ = false;
  std::string why_;
};

} // namespace

TEST_CASE("a loop that gets no CPU holds up no new connection: the others accept and serve them",
          "[e2e][loops]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  test::gate_process gate(dir.path(), upstream.port(), {"--threads", "3"});
  const auto pid = gate.proc().pid();
  const auto key = gate.admin_key();
  CHECK(threads_named(pid, "tg-api").size() == 1); // the token API's thread, named too
  for (int loop = 0; loop < 3; ++loop) {
    const auto name = "tg-loop-" + std::to_string(loop);
    INFO("held: " << name);
    const auto tids = threads_named(pid, name);
    REQUIRE(tids.size() == 1);
    std::this_thread::sleep_for(200ms); // the loop has finished the last connection's work
    stopped_thread held(tids.front());
    if (!held.held()) {
      WARN("cannot stop a thread of the sidecar (ptrace: " << held.why() << "): not run here");
      return;
    }
    // One after another, so that each finds every loop that runs waiting: with connections
    // handed round the loops in turn, every third would wait for the held one.
    for (int i = 0; i < 12; ++i) {
      test::raw_connection c(gate.port());
      c.send("GET /public/x HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
             "\r\nConnection: close\r\n\r\n");
      CHECK(test::status_of(c.read_until_close(3s)) == 200);
    }
  }
  // Released, every loop serves again, and the sidecar stops as usual.
  for (int i = 0; i < 12; ++i)
    CHECK(test::call(gate.port(), "GET", "/public/x", key).status == 200);
  CHECK(gate.terminate() == 0);
}
