#include "proxy/audit_log.hpp"

#include "proxy/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tokengate::proxy {
namespace {

std::string audit_line(const tokenapi::audit_event& e) {
  json_line line;
  line.add("log", "audit")
      .add("operation", e.operation)
      .add("actor", e.actor_id)
      .add("target", e.target_id)
      .add("target_name", e.target_name)
      .add("client", e.client)
      .add("changed", e.changed)
      .add("result", e.status);
  if (e.previous_value)
    line.add_bool("previous_value", true);
  return std::move(line).finish();
}

} // namespace

audit_log::open_file::~open_file() { ::close(fd); }

audit_log::audit_log(log_sink& log, const std::filesystem::path& file, std::size_t max_held_bytes)
    : log_(log), file_(file.string()), max_held_bytes_(max_held_bytes) {
  if (file.empty())
    return;
  std::string error;
  const int fd = open_regular_for_appending(file_, error);
  if (fd < 0)
    throw std::runtime_error("cannot open audit_log_file " + file_ + ": " + error);
  file_handle_ = std::make_shared<const open_file>(fd);
}

audit_log::~audit_log() {
  if (file_.empty())
    return;
  if (!ready())
    log_.event(log_level::error, "audit events never reached the audit log file",
               [&](json_line& l) {
                 l.add("file", file_).add("events", std::uint64_t{held_.size()} + dropped_);
               });
}

void audit_log::reopen() {
  if (file_.empty())
    return;
  std::string error;
  const int fd = open_regular_for_appending(file_, error);
  if (fd < 0) {
    log_.event(log_level::error, "could not reopen the audit log file; it keeps the one it has",
               [&](json_line& l) { l.add("file", file_).add("error", error); });
    return;
  }
  auto opened = std::make_shared<const open_file>(fd);
  {
    std::lock_guard lock(mutex_);
    file_handle_ = std::move(opened);
    cut_at_ = -1; // a cut still owed was the old file's
  }
  log_.event(log_level::info, "audit log file reopened",
             [&](json_line& l) { l.add("file", file_); });
}

void audit_log::record(const tokenapi::audit_event& e) {
  auto text = audit_line(e);
  // A change's line stays in the log stream even while it is stalled: the stream is the whole
  // trail without audit_log_file. A refusal's may be dropped (anyone can send one).
  const bool change = e.status < 300;
  log_.write(text, false, change);
  if (file_.empty())
    return;
  text.push_back('\n');
  std::shared_ptr<const open_file> written_to;
  {
    std::lock_guard lock(mutex_);
    if (outage_) { // behind the events held, in order
      hold(std::move(text), change);
      return;
    }
    if (const int error = append(text); error != 0) {
      hold(std::move(text), change);
      start_outage("could not append to the audit log file", error);
      return;
    }
    written_to = file_handle_;
  }
  // Only a change is synced (a refusal changes nothing), and outside the lock, so that the
  // refusals appended meanwhile do not wait for the disk. A line whose sync failed may never
  // reach the disk (a later sync need not say so again): it is held, to be written again.
  if (change && ::fdatasync(written_to->fd) != 0) {
    const int error = errno;
    std::lock_guard lock(mutex_);
    hold(std::move(text), change);
    start_outage("could not sync the audit log file", error);
  }
}

bool audit_log::ready() {
  if (file_.empty())
    return true;
  std::lock_guard lock(mutex_);
  if (!outage_)
    return true;
  std::uint64_t written = 0;
  while (!held_.empty()) {
    if (append(held_.front()) != 0)
      return false;
    held_bytes_ -= held_.front().size();
    held_.pop_front();
    ++written;
  }
  if (::fdatasync(file_handle_->fd) != 0)
    return false;
  outage_ = false;
  log_.event(log_level::warn, "the audit log file takes writes again", [&](json_line& l) {
    l.add("file", file_).add("written", written).add("dropped", dropped_);
  });
  dropped_ = 0;
  return true;
}

int audit_log::append(std::string_view text) {
  const int fd = file_handle_->fd;
  if (cut_at_ >= 0) {
    if (::ftruncate(fd, cut_at_) != 0)
      return errno;
    cut_at_ = -1;
  }
  struct stat before {};
  if (::fstat(fd, &before) != 0)
    return errno;
  for (std::string_view rest = text; !rest.empty();) {
    const auto n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      // A torn line would glue the next event onto it: cut the file back to whole lines.
      if (rest.size() != text.size() && ::ftruncate(fd, before.st_size) != 0)
        cut_at_ = before.st_size;
      return error;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

void audit_log::hold(std::string text, bool kept) {
  if (!kept && held_bytes_ + text.size() > max_held_bytes_) {
    ++dropped_;
    return;
  }
  held_bytes_ += text.size();
  held_.push_back(std::move(text));
}

void audit_log::start_outage(std::string_view what, int error) {
  if (outage_)
    return;
  outage_ = true;
  log_.event(log_level::error, what, [&](json_line& l) {
    l.add("file", file_)
        .add("error", std::strerror(error))
        .add("consequence", "token changes are refused until the file takes writes again");
  });
}

} // namespace tokengate::proxy
