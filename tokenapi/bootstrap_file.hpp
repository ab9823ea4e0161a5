#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// Why the bootstrap token file could not be read or written: one line naming the file and the
/// system's reason, never its content.
struct bootstrap_file_error {
  std::string text;
  [[nodiscard]] const std::string& message() const { return text; }
};

template <class T> using bootstrap_file_result = boost::system::result<T, bootstrap_file_error>;

/// The value in the bootstrap token file at `file` (README "Bootstrap"), without the whitespace
/// around it; nullopt when there is no such file; an error when it exists but cannot be read
/// (e.g. it is a directory, or access is denied). Whether the value is a key is the caller's
/// decision.
[[nodiscard]] bootstrap_file_result<std::optional<std::string>>
read_bootstrap_file(const std::filesystem::path& file);

/// Creates `file` holding `value` and a newline, with mode 0600, creating its directory when
/// missing; never replaces an existing file (an error then). The file and its directory entry
/// are synced before it returns, so a key handed out survives a crash.
[[nodiscard]] bootstrap_file_result<void> write_bootstrap_file(const std::filesystem::path& file,
                                                               std::string_view value);

/// Needed by boost::system::result::value(); callers test the result instead.
[[noreturn]] void throw_exception_from_error(const bootstrap_file_error& e,
                                             const boost::source_location& loc);

} // namespace tokengate::tokenapi
