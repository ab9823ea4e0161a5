#include "proxy/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

private:
  int fd_;
};

std::string too_large(std::size_t max_bytes) {
  return "larger than " + std::to_string(max_bytes) + " bytes";
}

// Opens `path` if it is a regular file of at most `max_bytes`; else `error` says why.
descriptor open_regular(const std::string& path, std::size_t max_bytes, std::string& error) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  descriptor d(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
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

std::optional<std::string> check_regular_file(const std::string& path, std::size_t max_bytes) {
  std::string error;
  if (open_regular(path, max_bytes, error).get() < 0)
    return error;
  return std::nullopt;
}

} // namespace tokengate::proxy
