#pragma once

#include "tests/support/catch_result.hpp"
#include "tokenapi/api_error.hpp"

#include <catch2/catch.hpp>

#include <string>

// Lets CHECK/REQUIRE print a tokenapi::api_result: "ok" or the status and message it refuses with.
namespace Catch {
template <class T> struct StringMaker<boost::system::result<T, tokengate::tokenapi::api_error>> {
  static std::string convert(const boost::system::result<T, tokengate::tokenapi::api_error>& r) {
    return r ? std::string("ok")
             : "error " + std::to_string(r.error().status) + ": " + r.error().message;
  }
};
} // namespace Catch
