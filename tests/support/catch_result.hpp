#pragma once

#include <boost/system/result.hpp>
#include <catch2/catch.hpp>

#include <string>

// Lets CHECK/REQUIRE print a boost::system::result: "ok" or the error's message.
namespace Catch {
template <class T, class E> struct StringMaker<boost::system::result<T, E>> {
  static std::string convert(const boost::system::result<T, E>& r) {
    return r ? std::string("ok") : "error: " + r.error().message();
  }
};
} // namespace Catch
