// The bootstrap token file on disk: the one file tokengate writes a key value to.
#include "tokenapi/bootstrap_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tokengate::tokenapi {
namespace {

bootstrap_file_error system_failure(std::string_view what, const std::filesystem::path& file,
                                    int error) {
  return {std::string(what) + " " + file.string() + ": " + std::strerror(error)};
}

std::string trim(std::string s) {
  const auto space = " \t\r\n";
  s.erase(s.find_last_not_of(space) + 1);
  s.erase(0, s.find_first_not_of(space));
  return s;
}

/// Closes a file descriptor when it goes out of scope.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

bootstrap_file_result<std::optional<std::string>>
read_bootstrap_file(const std::filesystem::path& file) {
  const fd_guard in{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0 && errno == ENOENT)
    return std::optional<std::string>{};
  if (in.fd < 0)
    return system_failure("cannot read bootstrap token file", file, errno);
  std::string content;
  char buffer[4096];
  for (;;) {
    const auto n = ::read(in.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return system_failure("cannot read bootstrap token file", file, errno);
    if (n == 0)
      break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>(trim(std::move(content)));
}

bootstrap_file_result<void> write_bootstrap_file(const std::filesystem::path& file,
                                                 std::string_view value) {
  std::error_code ec;
  if (file.has_parent_path())
    std::filesystem::create_directories(file.parent_path(), ec);
  if (ec)
    return system_failure("cannot create bootstrap token file", file, ec.value());
  const fd_guard out{::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (out.fd < 0)
    return system_failure("cannot create bootstrap token file", file, errno);
  std::string line(value);
  line.push_back('\n');
  // A file left empty or cut short (a full disk) would stop every later start as one without
  // a key: it goes, and the next start makes it again.
  const auto written = ::write(out.fd, line.data(), line.size());
  const int write_error = written < 0 ? errno : EIO;
  if (written != static_cast<ssize_t>(line.size())) {
    ::unlink(file.c_str());
    return system_failure("cannot write bootstrap token file", file, write_error);
  }
  if (::fsync(out.fd) != 0) {
    const int sync_error = errno;
    ::unlink(file.c_str());
    return system_failure("cannot write bootstrap token file", file, sync_error);
  }
  // The new directory entry is durable only once the directory itself is synced.
  const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const fd_guard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0)
    ::fsync(d.fd);
  return {};
}

void throw_exception_from_error(const bootstrap_file_error& e, const boost::source_location&) {
  throw std::runtime_error(e.text);
}

} // namespace tokengate::tokenapi
