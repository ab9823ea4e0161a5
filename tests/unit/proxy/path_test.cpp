// Path hygiene: the path a route is chosen on, and that goes upstream, is normalised once;
// anything that could hide a segment boundary is refused.
#include "proxy/path.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace tokengate::proxy;

namespace {

std::string normal(std::string_view target) {
  normalized_target out;
  const auto r = normalize_target(target, out);
  INFO("target: " << target << " error: " << (r ? "none" : describe(r.error())));
  REQUIRE(r.has_value());
  return out.path;
}

std::optional<path_error> error_of(std::string_view target) {
  normalized_target out;
  const auto r = normalize_target(target, out);
  return r ? std::nullopt : std::optional(r.error());
}

} // namespace

TEST_CASE("dot segments are applied, never above the root", "[path]") {
  CHECK(normal("/public/../alerts") == "/alerts");
  CHECK(normal("/a/./b") == "/a/b");
  CHECK(normal("/a/b/..") == "/a/");
  CHECK(normal("/a/b/.") == "/a/b/");
  CHECK(normal("/a/b/../c") == "/a/c");
  CHECK(normal("/..") == "/");
  CHECK(normal("/../../etc/passwd") == "/etc/passwd");
  CHECK(normal("/a/../../b") == "/b");
  CHECK(normal("/.") == "/");
  CHECK(normal("/") == "/");
  CHECK(normal("/..a/b") == "/..a/b"); // "..." is refused: see "segments of dots and spaces"
  CHECK(normal("/a/.b") == "/a/.b");
}

TEST_CASE("encoded dots are decoded before dot segments are applied", "[path]") {
  CHECK(normal("/public/%2e%2e/alerts") == "/alerts");
  CHECK(normal("/public/%2E%2E/alerts") == "/alerts");
  CHECK(normal("/public/.%2e/alerts") == "/alerts");
  CHECK(normal("/public/%2e./alerts") == "/alerts");
  CHECK(normal("/public/%2e/alerts") == "/public/alerts");
  CHECK(normal("/public/%2e%2e") == "/");
}

TEST_CASE("repeated slashes collapse and a trailing slash is kept", "[path]") {
  CHECK(normal("//alerts") == "/alerts");
  CHECK(normal("/alerts//7") == "/alerts/7");
  CHECK(normal("///alerts///7///") == "/alerts/7/");
  CHECK(normal("/alerts/") == "/alerts/");
  CHECK(normal("/alerts") == "/alerts");
}

TEST_CASE("unreserved escapes are decoded, others upper-cased", "[path]") {
  CHECK(normal("/%41") == "/A");
  CHECK(normal("/%61%7a%30%2D%5F%7E") == "/az0-_~");
  CHECK(normal("/a%3ab") == "/a%3Ab");
  CHECK(normal("/a%3Ab") == "/a%3Ab");
  CHECK(normal("/a%20b") == "/a%20b");
  CHECK(normal("/caf%c3%a9") == "/caf%C3%A9");
}

TEST_CASE("the query is kept as sent", "[path]") {
  normalized_target out;
  const std::string target = "/public/../alerts?x=%2F&y=../z&%zz";
  REQUIRE(normalize_target(target, out).has_value());
  CHECK(out.path == "/alerts");
  CHECK(out.has_query);
  CHECK(out.query == "x=%2F&y=../z&%zz");

  REQUIRE(normalize_target("/a?", out).has_value());
  CHECK(out.path == "/a");
  CHECK(out.has_query);
  CHECK(out.query.empty());

  REQUIRE(normalize_target("/a", out).has_value());
  CHECK_FALSE(out.has_query);
  CHECK(out.query.empty());

  REQUIRE(normalize_target("/a?b?c", out).has_value());
  CHECK(out.query == "b?c");
}

TEST_CASE("the same object can be reused for another target", "[path]") {
  normalized_target out;
  REQUIRE(normalize_target("/a/very/long/path/indeed?q=1", out).has_value());
  REQUIRE(normalize_target("/b", out).has_value());
  CHECK(out.path == "/b");
  CHECK_FALSE(out.has_query);
  CHECK(normalize_target("/x%2Fy", out).error() == path_error::encoded_separator);
  REQUIRE(normalize_target("/c", out).has_value());
  CHECK(out.path == "/c");
}

TEST_CASE("a path is printable ASCII: other bytes must be escaped", "[path]") {
  using namespace std::string_literals;
  for (const auto& target :
       {"/a b"s, "/a\tb"s, "/caf\xC3\xA9"s, "/\xC0\xAF"s, "/a\x7f"s, "/a\0b"s}) {
    INFO(target);
    CHECK(error_of(target) == path_error::raw_byte);
  }
}

TEST_CASE("targets that could hide a segment boundary are refused", "[path]") {
  CHECK(error_of("/a%2Fb") == path_error::encoded_separator);
  CHECK(error_of("/a%2fb") == path_error::encoded_separator);
  CHECK(error_of("/public%2F..%2Falerts") == path_error::encoded_separator);
  CHECK(error_of("/a%5Cb") == path_error::encoded_separator);
  CHECK(error_of("/a%5cb") == path_error::encoded_separator);
  CHECK(error_of("/a%00b") == path_error::encoded_separator);
  CHECK(error_of("/a%00") == path_error::encoded_separator);
  CHECK(error_of("/a\\b") == path_error::backslash);
  CHECK(error_of("/public\\..\\alerts") == path_error::backslash);
}

TEST_CASE("dot segments with parameters are refused: Tomcat and Spring read them as dots",
          "[path][spelling]") {
  for (auto target :
       {"/public/..;/admin", "/public/..;x=1/admin", "/public/.;/admin", "/public/.;x=1",
        "/public/%2e%2e;/admin", "/public/%2e;/admin", "/public/..%3b/admin", "/public/..%3B/admin",
        "/public/.%2E%3bjsessionid=1/a", "/..;", "/a/..;/b", "/public/..%3F/admin", "/public/..%23",
        "/public/.%3f", "/public//..%23x"}) {
    INFO(target);
    CHECK(error_of(target) == path_error::dot_parameters);
  }
  // A parameter on any other segment is an ordinary character.
  CHECK(normal("/public;x/../alerts") == "/alerts");
  CHECK(normal("/a;b/c") == "/a;b/c");
  CHECK(normal("/x..;/y") == "/x..;/y");
  CHECK(normal("/a/..?x;y") == "/");
}

TEST_CASE("segments of dots and spaces are refused: Windows and IIS trim them to dot segments",
          "[path][spelling]") {
  for (auto target :
       {"/public/.../alerts/1", "/public/..%20/alerts/1", "/public/.%20/x", "/public/%20../x",
        "/public/....", "/public/.%2e%2e/alerts", "/public/.%20%20.%20/x"}) {
    INFO(target);
    CHECK(error_of(target) == path_error::dots_and_spaces);
  }
  // With parameters, as Tomcat cuts them, they are dot segments there too.
  for (auto target : {"/public/...;x/alerts/1", "/public/..%20;x/alerts", "/public/..%20%3Bx/a",
                      "/public/.%20%3F"}) {
    INFO(target);
    CHECK(error_of(target) == path_error::dot_parameters);
  }
  // Names with dots or spaces in them, and "." and "..", are what they were.
  CHECK(normal("/a.../b") == "/a.../b");
  CHECK(normal("/.x/..y/b") == "/.x/..y/b");
  CHECK(normal("/a%20b/%20") == "/a%20b/%20");
  CHECK(normal("/a/./b/../c") == "/a/c");
}

TEST_CASE("escapes that begin an overlong UTF-8 form are refused: %C0%AF is '/' to a lenient "
          "decoder",
          "[path][spelling]") {
  for (auto target : {"/public/..%c0%afalerts/1", "/public/%c0%ae%c0%ae/alerts/1", "/a%C1%9C",
                      "/a%c0", "/a%E0%80%AF", "/a%e0%9f%bf", "/a%F0%80%80%AF", "/a%f0%8f%bf%bf",
                      "/public/%F8%80%80%80%AE%F8%80%80%80%AE/alerts",
                      "/public/..%FC%80%80%80%80%AFalerts", "/a%f8%87", "/a%fc%83"}) {
    INFO(target);
    CHECK(error_of(target) == path_error::overlong_utf8);
  }
  // Well-formed UTF-8, and Latin-1 bytes some old backends use, pass as escapes.
  CHECK(normal("/caf%C3%A9") == "/caf%C3%A9");
  CHECK(normal("/%E0%A4%85") == "/%E0%A4%85");       // U+0905
  CHECK(normal("/%F0%9F%98%80") == "/%F0%9F%98%80"); // U+1F600
  CHECK(normal("/caf%E9") == "/caf%E9");
  CHECK(normal("/gr%FC%DFe") == "/gr%FC%DFe"); // Latin-1 "grüße"
  CHECK(normal("/%F8%88") == "/%F8%88");
  CHECK(normal("/%E0") == "/%E0");
  CHECK(normal("/%F0x") == "/%F0x");
}

TEST_CASE("escapes a backend could decode into something else are refused", "[path][spelling]") {
  // A second decoding would turn %252e%252e into "..", %252f into "/".
  CHECK(error_of("/%25") == path_error::encoded_percent);
  CHECK(error_of("/public/%252e%252e/admin") == path_error::encoded_percent);
  CHECK(error_of("/a%252fb") == path_error::encoded_percent);
  for (auto target : {"/a%01", "/a%0a", "/a%0D", "/a%1f", "/a%7f", "/a%7F/b", "/%09"}) {
    INFO(target);
    CHECK(error_of(target) == path_error::encoded_control);
  }
  CHECK(normal("/a%20b") == "/a%20b");
  CHECK(normal("/a%80") == "/a%80");
}

TEST_CASE("malformed escapes and non-origin targets are refused", "[path]") {
  CHECK(error_of("/a%4") == path_error::bad_escape);
  CHECK(error_of("/a%") == path_error::bad_escape);
  CHECK(error_of("/a%zz") == path_error::bad_escape);
  CHECK(error_of("/a%4g") == path_error::bad_escape);
  CHECK(error_of("/a%g4") == path_error::bad_escape);
  CHECK(error_of("/%%41") == path_error::bad_escape);
  CHECK(error_of("/a%4?x") == path_error::bad_escape);

  CHECK(error_of("*") == path_error::not_origin_form);
  CHECK(error_of("http://x/y") == path_error::not_origin_form);
  CHECK(error_of("example.com:443") == path_error::not_origin_form);
  CHECK(error_of("") == path_error::not_origin_form);
  CHECK(error_of("alerts") == path_error::not_origin_form);
  CHECK(error_of("#frag") == path_error::not_origin_form);

  CHECK(error_of("/alerts#frag") == path_error::fragment);
  CHECK(error_of("/alerts?x=1#frag") == path_error::fragment);

  for (auto e : {path_error::not_origin_form, path_error::bad_escape, path_error::encoded_separator,
                 path_error::backslash, path_error::fragment, path_error::dot_parameters,
                 path_error::encoded_percent, path_error::encoded_control,
                 path_error::overlong_utf8, path_error::dots_and_spaces, path_error::raw_byte})
    CHECK_FALSE(describe(e).empty());
  CHECK(describe(path_error::encoded_separator) != describe(path_error::bad_escape));
}

TEST_CASE("under_prefix matches whole segments only", "[path][routes]") {
  CHECK(under_prefix("/alerts", "/alerts"));
  CHECK(under_prefix("/alerts/", "/alerts"));
  CHECK(under_prefix("/alerts/7", "/alerts"));
  CHECK(under_prefix("/alerts/7/notes", "/alerts"));
  CHECK_FALSE(under_prefix("/alertsx", "/alerts"));
  CHECK_FALSE(under_prefix("/alert", "/alerts"));
  CHECK_FALSE(under_prefix("/", "/alerts"));
  CHECK_FALSE(under_prefix("/Alerts", "/alerts"));
  CHECK_FALSE(under_prefix("/alerts;x", "/alerts")); // ';' is an ordinary character
  CHECK_FALSE(under_prefix("/alerts;x/7", "/alerts"));
  CHECK_FALSE(under_prefix("/x/alerts", "/alerts"));

  CHECK(under_prefix("/", "/"));
  CHECK(under_prefix("/anything", "/"));
  CHECK(under_prefix("/a/b/c", "/"));

  CHECK(under_prefix("/api/v1/x", "/api/v1"));
  CHECK_FALSE(under_prefix("/api/v10", "/api/v1"));
}

TEST_CASE("a dot segment before an encoded '?' or '#' is refused", "[path][fuzz]") {
  // Found by tests/fuzz/path_route.cpp: a backend that decodes the whole target before splitting
  // off the query reads "/public/..%23x" as "/public/.." and serves "/".
  CHECK(error_of("/public//..%23x") == path_error::dot_parameters);
  CHECK(error_of("/public//..%23\x8e") == path_error::raw_byte); // as the fuzzer found it
  CHECK(error_of("/public/..%3Fx=1") == path_error::dot_parameters);
  CHECK(normal("/public/x%3F/..") == "/public/");
  CHECK(normal("/public/%23") == "/public/%23");
}
