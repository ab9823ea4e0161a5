#pragma once

#include "tokenapi/api_error.hpp"

#include <boost/json/value.hpp>

#include <string_view>

namespace tokengate::tokenapi {

/// Parses `text` as one JSON document, refusing what a plain parse would quietly accept: a key
/// repeated in one object (parsers disagree on which one counts, so a body could say one thing
/// to a validator and another to the code that acts on it). Errors are 400s naming `subject`:
/// "<subject> is not valid JSON: ..." or "<subject> has a duplicate key \"name\"".
/// Thread-safe.
[[nodiscard]] api_result<boost::json::value> parse_json(std::string_view text,
                                                        std::string_view subject);

} // namespace tokengate::tokenapi
