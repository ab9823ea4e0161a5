#include "tokenapi/rfc3339.hpp"

#include <cstdio>

namespace tokengate::tokenapi {
namespace {

// Reads exactly `n` digits at `pos`, advancing it.
std::optional<int> digits(std::string_view s, std::size_t& pos, std::size_t n) noexcept {
  if (pos + n > s.size())
    return std::nullopt;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view s, std::size_t& pos, char a, char b = '\0') noexcept {
  if (pos >= s.size() || (s[pos] != a && (b == '\0' || s[pos] != b)))
    return false;
  ++pos;
  return true;
}

// "Z" (0) or "+hh:mm" / "-hh:mm" in minutes east of UTC, advancing `pos`.
std::optional<int> offset(std::string_view s, std::size_t& pos) noexcept {
  if (expect(s, pos, 'Z', 'z'))
    return 0;
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-'))
    return std::nullopt;
  const int sign = s[pos++] == '-' ? -1 : 1;
  auto oh = digits(s, pos, 2);
  if (!oh || !expect(s, pos, ':'))
    return std::nullopt;
  auto om = digits(s, pos, 2);
  if (!om || *oh > 23 || *om > 59)
    return std::nullopt;
  return sign * (*oh * 60 + *om);
}

} // namespace

std::string format_rfc3339(timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()));
  return buffer;
}

std::optional<timestamp> parse_rfc3339(std::string_view s, rfc3339_refusal* why) noexcept {
  using namespace std::chrono;
  if (why)
    *why = rfc3339_refusal::malformed;
  std::size_t pos = 0;
  auto y = digits(s, pos, 4);
  if (!y || !expect(s, pos, '-'))
    return std::nullopt;
  auto mo = digits(s, pos, 2);
  if (!mo || !expect(s, pos, '-'))
    return std::nullopt;
  auto d = digits(s, pos, 2);
  if (!d || !expect(s, pos, 'T', 't'))
    return std::nullopt;
  auto h = digits(s, pos, 2);
  if (!h || !expect(s, pos, ':'))
    return std::nullopt;
  auto mi = digits(s, pos, 2);
  if (!mi || !expect(s, pos, ':'))
    return std::nullopt;
  auto sec = digits(s, pos, 2);
  if (!sec)
    return std::nullopt;
  if (pos < s.size() && s[pos] == '.') {
    const auto start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
      ++pos;
    if (pos == start)
      return std::nullopt;
  }
  const auto offset_minutes = offset(s, pos);
  if (!offset_minutes || pos != s.size() || *h > 23 || *mi > 59 || *sec > 60)
    return std::nullopt;

  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok())
    return std::nullopt;
  if (*sec == 60) {
    if (why)
      *why = rfc3339_refusal::leap_second;
    return std::nullopt;
  }
  const timestamp t =
      sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*sec} - minutes{*offset_minutes};
  // An offset may carry the time out of years 0000 to 9999 in UTC, where it has no RFC 3339
  // form to be answered in (9999-12-31T23:59:59-01:00 is in the year 10000).
  const int utc_year = int(year_month_day{floor<days>(t)}.year());
  if (utc_year < 0 || utc_year > 9999) {
    if (why)
      *why = rfc3339_refusal::out_of_range;
    return std::nullopt;
  }
  return t;
}

} // namespace tokengate::tokenapi
