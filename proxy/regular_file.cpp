#include "proxy/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace tokengate::proxy {
namespace {

// A file descriptor, closed when it goes; -1 for none.
class descriptor {
public:
  explicit descriptor(int fd) : fd_(fd) {}
  descriptor(descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  descriptor& operator=(descriptor&&) = delete;
  ~descriptor() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

std::string too_large(std::size_t max_bytes) {
  return "larger than " + std::to_string(max_bytes) + " bytes";
}

// Opens `path` with `flags` if it is a regular file of at most `max_bytes`; else `error` says
// why. O_NONBLOCK: opening a FIFO would otherwise wait for its other end.
descriptor open_regular(const std::string& path, std::size_t max_bytes, std::string& error,
                        int flags = O_RDONLY, mode_t mode = 0) {
  descriptor d(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode));
  struct stat st {};
  if (d.get() < 0 || ::fstat(d.get(), &st) != 0)
    error = std::strerror(errno);
  else if (!S_ISREG(st.st_mode))
    error = "not a regular file";
  else if (static_cast<std::size_t>(st.st_size) > max_bytes)
    error = too_large(max_bytes);
  else
    return d;
  return descriptor(-1);
}

} // namespace

file_text read_regular_file(const std::string& path, std::size_t max_bytes) {
  file_text out;
  const auto d = open_regular(path, max_bytes, out.error);
  if (d.get() < 0)
    return out;
  std::string text;
  char chunk[16384];
  for (;;) {
    const auto n = ::read(d.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      out.error = std::strerror(errno);
      return out;
    }
    if (n == 0)
      break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) { // it grew since fstat
      out.error = too_large(max_bytes);
      return out;
    }
  }
  out.text = std::move(text);
  return out;
}

int open_regular_for_appending(const std::string& path, std::string& error) {
  auto d = open_regular(path, std::numeric_limits<std::size_t>::max(), error,
                        O_WRONLY | O_APPEND | O_CREAT, 0600);
  return d.release();
}

std::optional<std::string> check_regular_file(const std::string& path, std::size_t max_bytes) {
  std::string error;
  if (open_regular(path, max_bytes, error).get() < 0)
    return error;
  return std::nullopt;
}

} // namespace tokengate::proxy
