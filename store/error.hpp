#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace tokengate::store {

/// Failures a token store reports. Callers fail closed on any of them.
enum class errc {
  io_error = 1, ///< the disk or the engine refused the operation
  corruption,   ///< a stored entry could not be decoded
  busy,         ///< the engine is shutting down or temporarily unavailable
  unavailable,  ///< the database (PostgreSQL) cannot be reached
  conflict,     ///< a different record already holds this id (migration)
};

[[nodiscard]] const boost::system::error_category& store_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

template <class T> using result = boost::system::result<T>;

} // namespace tokengate::store

template <> struct boost::system::is_error_code_enum<tokengate::store::errc> : std::true_type {};
