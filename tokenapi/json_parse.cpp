#include "tokenapi/json_parse.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

#include <string>
#include <unordered_set>
#include <vector>

namespace tokengate::tokenapi {
namespace json = boost::json;
namespace {

constexpr std::size_t max_echo = 64; // longest key quoted back in a message

// A SAX handler that only looks for a key repeated within one object.
class duplicate_key_finder {
public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  bool found = false;
  std::string duplicate; ///< the first repeated key, once found

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    objects_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    objects_.pop_back();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    if (!objects_.back().insert(key_).second) {
      found = true;
      duplicate = std::move(key_);
      ec = json::error::syntax; // stops the parse; `duplicate` says why
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  std::vector<std::unordered_set<std::string>> objects_;
  std::string key_;
};

std::string quoted_key(std::string_view key) {
  auto cut = std::min(key.size(), max_echo);
  // Cut at a character boundary: half a UTF-8 sequence would make the answer invalid JSON.
  while (cut < key.size() && cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xc0) == 0x80)
    --cut;
  return "\"" + std::string(key.substr(0, cut)) + (cut < key.size() ? "...\"" : "\"");
}

} // namespace

api_result<json::value> parse_json(std::string_view text, std::string_view subject) {
  json::error_code ec;
  {
    json::basic_parser<duplicate_key_finder> finder(json::parse_options{});
    finder.write_some(false, text.data(), text.size(), ec);
    if (finder.handler().found)
      return bad_request(std::string(subject) + " has a duplicate key " +
                         quoted_key(finder.handler().duplicate));
  }
  auto value = json::parse(text, ec);
  if (ec)
    return bad_request(std::string(subject) + " is not valid JSON: " + ec.message());
  return value;
}

} // namespace tokengate::tokenapi
