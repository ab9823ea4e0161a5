#include "tokenapi/rfc3339.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tokengate::tokenapi;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {

timestamp at(int y, unsigned mo, unsigned d, hours h, minutes mi, seconds s) {
  return sys_days{year{y} / month{mo} / day{d}} + h + mi + s;
}

const timestamp example = at(2026, 11, 28, 2h, 41min, 26s);

// The parsed time, printed back in UTC ("nullopt" when refused), so failures read well.
std::string reparse(std::string_view text) {
  auto t = parse_rfc3339(text);
  return t ? format_rfc3339(*t) : "nullopt";
}

} // namespace

TEST_CASE("timestamps format as RFC 3339 in UTC with whole seconds", "[rfc3339]") {
  CHECK(format_rfc3339(example) == "2026-11-28T02:41:26Z");
  CHECK(format_rfc3339(timestamp{}) == "1970-01-01T00:00:00Z");
  CHECK(format_rfc3339(at(2028, 2, 29, 23h, 59min, 59s)) == "2028-02-29T23:59:59Z");
  CHECK(format_rfc3339(at(9999, 12, 31, 23h, 59min, 59s)) == "9999-12-31T23:59:59Z");
}

TEST_CASE("RFC 3339 text parses with Z, offsets and fractions", "[rfc3339]") {
  CHECK(parse_rfc3339("2026-11-28T02:41:26Z") == example);
  CHECK(parse_rfc3339("2026-11-28T02:41:26z") == example);
  CHECK(parse_rfc3339("2026-11-28t02:41:26Z") == example);
  CHECK(parse_rfc3339("2026-11-28T02:41:26+00:00") == example);
  CHECK(parse_rfc3339("2026-11-28T02:41:26-00:00") == example);
  CHECK(parse_rfc3339("2026-11-28T03:41:26+01:00") == example);
  CHECK(parse_rfc3339("2026-11-27T21:11:26-05:30") == example);
  CHECK(parse_rfc3339("2026-11-28T02:41:26.5Z") == example);
  CHECK(parse_rfc3339("2026-11-28T02:41:26.999999999Z") == example);
  CHECK(parse_rfc3339("2026-11-28T03:41:26.5+01:00") == example);
  CHECK(parse_rfc3339("2028-02-29T00:00:00Z") == at(2028, 2, 29, 0h, 0min, 0s));
}

TEST_CASE("offsets move the time across days, months and years", "[rfc3339]") {
  CHECK(reparse("2026-11-28T00:30:00+01:00") == "2026-11-27T23:30:00Z");
  CHECK(reparse("2026-12-31T23:00:00-02:00") == "2027-01-01T01:00:00Z");
  CHECK(reparse("2026-03-01T05:00:00+05:45") == "2026-02-28T23:15:00Z");
  CHECK(reparse("2026-06-15T12:00:00+23:59") == "2026-06-14T12:01:00Z");
  CHECK(reparse("2026-06-15T12:00:00-23:59") == "2026-06-16T11:59:00Z");
}

TEST_CASE("formatted timestamps parse back to themselves", "[rfc3339]") {
  for (auto t :
       {example, timestamp{}, at(2000, 2, 29, 12h, 0min, 1s), at(2099, 12, 31, 23h, 59min, 59s)})
    CHECK(parse_rfc3339(format_rfc3339(t)) == t);
}

TEST_CASE("invalid dates and times are refused", "[rfc3339]") {
  for (std::string text : {
           "2026-02-30T00:00:00Z", // no such day
           "2026-02-29T00:00:00Z", // not a leap year
           "2026-04-31T00:00:00Z",
           "2026-13-01T00:00:00Z",
           "2026-00-10T00:00:00Z",
           "2026-11-00T00:00:00Z",
           "2026-11-28T24:00:00Z",
           "2026-11-28T23:60:00Z",
           "2026-11-28T23:59:61Z",
           "2026-11-28T02:41:26+24:00",
           "2026-11-28T02:41:26+01:60",
       }) {
    INFO(text);
    CHECK_FALSE(parse_rfc3339(text).has_value());
  }
}

TEST_CASE("text that is not an RFC 3339 date-time is refused", "[rfc3339]") {
  for (std::string text : {
           "",
           "2026-11-28",
           "2026-11-28T02:41:26", // no offset
           "2026-11-28T02:41Z",
           "2026-11-28T02:41:26Zjunk",
           "2026-11-28T02:41:26Z ",
           " 2026-11-28T02:41:26Z",
           "2026-11-28T02:41:26+0100",
           "2026-11-28T02:41:26+01",
           "2026-11-28T02:41:26.Z",
           "2026-11-28T02:41:26,5Z",
           "2026-11-28X02:41:26Z",
           "2026/11/28T02:41:26Z",
           "26-11-28T02:41:26Z",
           "2026-1-28T02:41:26Z",
           "2026-11-28T2:41:26Z",
           "+2026-11-28T02:41:26Z",
           "2026-11-28T02:41:26UTC",
           "1764297686",
           "2026-11-28T02:41:26+01:00Z",
       }) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_rfc3339(text).has_value());
  }
}

TEST_CASE("times whose UTC form leaves years 0000 to 9999 are refused", "[rfc3339][fuzz]") {
  // Found by tests/fuzz/rfc3339.cpp: the answer would hold a five-digit year.
  CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59-23:59").has_value());
  CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59-00:01").has_value());
  CHECK_FALSE(parse_rfc3339("0000-01-01T00:00:00+00:01").has_value());
  CHECK(parse_rfc3339("9999-12-31T23:59:59Z").has_value());
  CHECK(parse_rfc3339("9999-12-31T23:59:59+01:00").has_value());
  CHECK(format_rfc3339(*parse_rfc3339("0000-01-01T00:00:00Z")) == "0000-01-01T00:00:00Z");
}
