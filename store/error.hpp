#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <type_traits>

namespace tokengate::store {

/// Failures a token store reports. Callers fail closed on any of them (`replica_behind`: see
/// there).
enum class errc {
  io_error = 1, ///< the disk or the engine refused the operation
  corruption,   ///< a stored entry could not be decoded
  busy,         ///< the engine is shutting down or temporarily unavailable
  unavailable,  ///< the database (PostgreSQL) cannot be reached
  conflict,     ///< a different record already holds this id (migration)
  stale,        ///< a conditional write found the record changed or gone since the caller read it
  /// Fleet mode: the database committed the write (it stands), but the local replica did not
  /// take it; reads here lag it until the follower brings the change in from the log.
  replica_behind,
  /// The session broke during COMMIT: the database may or may not have committed the write.
  commit_unknown,
};

[[nodiscard]] const boost::system::error_category& store_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

template <class T> using result = boost::system::result<T>;

/// A store that could not be opened: what kind of failure, and one line naming the place and
/// the engine's reason (e.g. "cannot open token store in ./data: IO error: lock ...").
struct open_error {
  errc code = errc::io_error;
  std::string text;
  [[nodiscard]] const std::string& message() const { return text; }
};

template <class T> using open_result = boost::system::result<T, open_error>;

/// Needed by boost::system::result::value(): throws std::runtime_error(e.text). Start-up code
/// and tests may call value(); everything else tests the result.
[[noreturn]] void throw_exception_from_error(const open_error& e,
                                             const boost::source_location& loc);

} // namespace tokengate::store

template <> struct boost::system::is_error_code_enum<tokengate::store::errc> : std::true_type {};
