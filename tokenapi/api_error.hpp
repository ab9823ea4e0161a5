#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <string>

namespace tokengate::tokenapi {

/// A refusal the API answers with: an HTTP status and the `message` of the JSON body.
struct api_error {
  unsigned status = 500;
  std::string message;
};

template <class T> using api_result = boost::system::result<T, api_error>;

[[nodiscard]] inline api_error bad_request(std::string message) {
  return {400, std::move(message)};
}
[[nodiscard]] inline api_error forbidden(std::string message) { return {403, std::move(message)}; }
[[nodiscard]] inline api_error not_found(std::string message) { return {404, std::move(message)}; }
[[nodiscard]] inline api_error unavailable() { return {503, "token store unavailable"}; }

/// Needed by boost::system::result::value(); the data path never calls it.
[[noreturn]] void throw_exception_from_error(const api_error& e, const boost::source_location& loc);

} // namespace tokengate::tokenapi
