#pragma once

// Reading rewritten heads in the rewrite tests, with a small parser of the tests' own, not the
// proxy's: what the upstream and the client receive.
#include "proxy/rewrite.hpp"

#include "tokenapi/authorizer.hpp"
#include "tokenapi/token.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokengate::proxy::testing {

inline bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A head as a peer would read it: start line, fields in order, and what follows.
struct wire_head {
  std::string start_line;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;

  [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : fields)
      if (same_name(n, name))
        out.push_back(v);
    return out;
  }
  [[nodiscard]] std::size_t count(std::string_view name) const { return all(name).size(); }
  // The value of the one field called `name`; fails the test unless there is exactly one.
  [[nodiscard]] std::string one(std::string_view name) const {
    const auto values = all(name);
    INFO("field " << name);
    REQUIRE(values.size() == 1);
    return values.front();
  }
  [[nodiscard]] bool has_name_starting(std::string_view prefix) const {
    for (const auto& f : fields)
      if (f.first.size() >= prefix.size() && same_name(f.first.substr(0, prefix.size()), prefix))
        return true;
    return false;
  }
};

inline wire_head read_head(const std::string& bytes) {
  wire_head h;
  const auto end = bytes.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  h.body = bytes.substr(end + 4);
  std::string_view rest(bytes.data(), end + 2);
  bool first = true;
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    REQUIRE(eol != std::string_view::npos);
    const auto line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    REQUIRE(line.find('\n') == std::string_view::npos);
    REQUIRE(line.find('\r') == std::string_view::npos);
    if (first) {
      h.start_line = std::string(line);
      first = false;
      continue;
    }
    const auto colon = line.find(": ");
    INFO("field line: " << line);
    REQUIRE(colon != std::string_view::npos);
    h.fields.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
  }
  return h;
}

inline std::shared_ptr<tokenapi::auth_entry> sample_token() {
  tokenapi::token t;
  t.id = "6f1c2a34-0000-4000-8000-000000000001";
  t.name = "ci deploy";
  t.permissions.insert(tokenapi::permission::AlertRead);
  t.permissions.insert(tokenapi::permission::AlertModify);
  return tokenapi::auth_entry::from(t);
}

// A request as the client sent it, and what the proxy knows around it.
struct forwarding {
  std::string text;
  http1::head head;
  normalized_target target;
  http1::framing body;
  tokenapi::ip_address peer = *tokenapi::ip_address::parse("203.0.113.7");
  bool peer_trusted = false;
  bool tls = false;
  std::string client_certificate;
  std::shared_ptr<tokenapi::auth_entry> token = sample_token();

  explicit forwarding(std::string request) : text(std::move(request)) {
    REQUIRE(http1::parse_request(text, head).has_value());
    REQUIRE(normalize_target(head.target, target).has_value());
    const auto framing = http1::request_framing(head);
    REQUIRE(framing.has_value());
    body = *framing;
  }

  wire_head upstream_sees() const {
    std::string out = "stale bytes";
    const auto peer_text = peer.to_string();
    build_upstream_request(out, head,
                           {target, body, token.get(), peer_text, peer_trusted, peer_text,
                            "127.0.0.1:8081", tls, client_certificate});
    return read_head(out);
  }
};

inline wire_head client_sees(const std::string& upstream_response, client_framing framing,
                             bool close, std::string_view key_fields = {}) {
  http1::head h;
  REQUIRE(http1::parse_response(upstream_response, h).has_value());
  std::string out = "stale bytes";
  build_client_response(out, h, framing, close, key_fields);
  return read_head(out);
}

} // namespace tokengate::proxy::testing
