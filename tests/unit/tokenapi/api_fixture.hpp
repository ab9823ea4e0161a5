#pragma once

// A whole token API in memory (store, authorizer, service, handler, a manual clock) and a small
// client that sends it requests the way the proxy would, reading back what a user would see.
#include "store/memory_store.hpp"
#include "tests/support/catch_tokenapi.hpp"
#include "tests/unit/tokenapi/catch_api_result.hpp"
#include "tokenapi/api.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace tokengate::test {

namespace json = boost::json;
using namespace std::chrono_literals;

/// An answer as a client reads it.
struct reply {
  unsigned status = 0;
  std::string raw;
  json::value body; ///< null when the answer has no body
  std::string allow;
  std::string caller_id; ///< the authenticated caller, as the access log shows it

  [[nodiscard]] const json::object& object() const {
    REQUIRE(body.is_object());
    return body.get_object();
  }
  /// A string field of the body; "" when absent.
  [[nodiscard]] std::string text(std::string_view key) const {
    auto v = object().if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  }
  [[nodiscard]] bool has(std::string_view key) const { return object().contains(key); }
  [[nodiscard]] std::string message() const { return text("message"); }
  [[nodiscard]] std::string id() const { return text("id"); }
  [[nodiscard]] std::string value() const { return text("value"); }
};

inline reply read_reply(const tokenapi::api_response& r) {
  reply out{r.status, r.body, nullptr, std::string(r.allow), r.caller_id};
  if (!r.body.empty()) {
    boost::system::error_code ec;
    out.body = json::parse(r.body, ec);
    INFO("body: " << r.body);
    REQUIRE_FALSE(ec);
  }
  if (r.status >= 400) {
    // Every refusal is {"message": "..."} and nothing else.
    INFO("body: " << r.body);
    REQUIRE(out.body.is_object());
    CHECK(out.body.get_object().size() == 1);
    CHECK(out.body.get_object().contains("message"));
  }
  return out;
}

/// Sends requests to the handler with one key (or none) from one address.
class client {
public:
  client(tokenapi::api_handler& api, std::optional<std::string> key)
      : api_(&api), key_(std::move(key)) {}

  /// The same client calling from another address.
  [[nodiscard]] client from(std::string_view address) const {
    client c = *this;
    c.from_ = test::ip(address);
    return c;
  }

  reply get(std::string_view target) const { return send("GET", target); }
  reply post(std::string_view target, std::string_view body = {}) const {
    return send("POST", target, body);
  }
  reply del(std::string_view target) const { return send("DELETE", target); }

  /// `target` is the path with an optional "?query".
  reply send(std::string_view method, std::string_view target, std::string_view body = {}) const {
    return read_reply(api_->handle(request(method, target, body)));
  }

  /// What the handler answers before the body is read; nullopt when it needs the body.
  std::optional<reply> refuse_early(std::string_view method, std::string_view target) const {
    auto refused = api_->refuse_early(request(method, target, {}));
    if (!refused)
      return std::nullopt;
    return read_reply(*refused);
  }

private:
  tokenapi::api_request request(std::string_view method, std::string_view target,
                                std::string_view body) const {
    const auto question = target.find('?');
    tokenapi::api_request r;
    r.method = method;
    r.path = target.substr(0, question);
    r.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    if (key_)
      r.api_key = *key_;
    r.client = from_;
    r.body = body;
    return r;
  }

  tokenapi::api_handler* api_;
  std::optional<std::string> key_;
  tokenapi::ip_address from_ = test::ip("127.0.0.1");
};

/// A create/update body.
inline std::string spec_body(std::string_view name, std::initializer_list<std::string_view> perms,
                             std::initializer_list<std::string_view> cidrs = {}) {
  json::object o;
  o["name"] = name;
  json::array p;
  for (auto n : perms)
    p.emplace_back(n);
  o["permissions"] = std::move(p);
  if (cidrs.size() != 0) {
    json::array c;
    for (auto b : cidrs)
      c.emplace_back(b);
    o["allowedCIDRBlocks"] = std::move(c);
  }
  return json::serialize(o);
}

/// A token made straight through the service.
struct issued_token {
  std::string id;
  std::string value;
};

/// Store, authorizer, service and handler over a clock that starts at t0; the store is empty.
struct api_core {
  store::memory_store store;
  tokenapi::authorizer auth;
  tokenapi::manual_clock clock{t0};
  tokenapi::token_service service{store, auth, clock};
  tokenapi::api_handler api{service, auth, clock};

  /// Creates a token as an all-powerful caller would, without going through the handler.
  issued_token issue(std::string name, tokenapi::permission_set permissions,
                     std::vector<std::string_view> cidrs = {},
                     std::optional<tokenapi::timestamp> expires_at = std::nullopt) {
    tokenapi::token root_token;
    root_token.id = "test-root";
    root_token.permissions = tokenapi::permission_set::all();
    const auto root_entry = tokenapi::auth_entry::from(root_token);
    const auto& root = *root_entry;
    tokenapi::token_spec spec;
    spec.name = std::move(name);
    spec.permissions = permissions;
    for (auto c : cidrs) {
      auto block = tokenapi::cidr_block::parse(c);
      REQUIRE(block.has_value());
      spec.allowed_cidr_blocks.push_back(*block);
    }
    spec.expires_at = expires_at;
    auto made = service.create(root, spec);
    REQUIRE(made);
    return {made->t.id, made->value};
  }

  issued_token issue(std::string name, std::initializer_list<tokenapi::permission> permissions,
                     std::vector<std::string_view> cidrs = {},
                     std::optional<tokenapi::timestamp> expires_at = std::nullopt) {
    tokenapi::permission_set set;
    for (auto p : permissions)
      set.insert(p);
    return issue(std::move(name), set, std::move(cidrs), expires_at);
  }

  [[nodiscard]] client as(std::string key) { return client(api, std::move(key)); }
  [[nodiscard]] client as(const issued_token& t) { return as(t.value); }
  [[nodiscard]] client anonymous() { return client(api, std::nullopt); }

  /// Every record the store holds.
  [[nodiscard]] std::vector<store::token_record> records() const {
    auto all = store.scan("", 1'000'000);
    REQUIRE(all);
    return *all;
  }

  /// Whether `value` appears anywhere in what the store keeps.
  [[nodiscard]] bool store_mentions(std::string_view value) const {
    for (const auto& r : records()) {
      const std::string digest_bytes(r.value_digest.begin(), r.value_digest.end());
      if (r.payload.find(value) != std::string::npos || r.id.find(value) != std::string::npos ||
          digest_bytes.find(value) != std::string::npos)
        return true;
    }
    return false;
  }
};

/// An api_core with one `admin` token that holds every permission.
struct api_world : api_core {
  issued_token admin = issue("admin", tokenapi::permission_set::all());

  [[nodiscard]] client as_admin() { return as(admin); }
};

/// A second authorizer, service and handler over the same store: the process after a restart.
struct restarted {
  tokenapi::authorizer auth;
  tokenapi::token_service service;
  tokenapi::api_handler api;

  restarted(store::token_store& s, const tokenapi::clock& c)
      : service(s, auth, c), api(service, auth, c) {}
  [[nodiscard]] client as(std::string key) { return client(api, std::move(key)); }
};

} // namespace tokengate::test
