#pragma once

#include "tokenapi/audit.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/clock.hpp"
#include "tokenapi/token_service.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// One call of the token API, with the HTTP details already taken apart.
struct api_request {
  std::string_view method;
  std::string_view path;  ///< normalised, without the query
  std::string_view query; ///< raw, without '?'
  std::optional<std::string_view> api_key;
  ip_address client;
  std::string_view body;
};

/// What to answer: a status and a JSON body (empty for 204); `allow` is set for 405.
struct api_response {
  unsigned status = 200;
  std::string body;
  std::string_view allow;
  std::string caller_id; ///< the authenticated caller's token id, for the access log
  /// The authenticated caller, and whether it used its token's replaced value: for the
  /// response fields that tell a client about its key.
  std::shared_ptr<const auth_entry> caller{};
  bool previous_value = false;
  /// The operation asked for: "list", "create", "get", "update", "delete", "rotate", or
  /// "unknown" when the path or method names none. For metrics and the audit trail.
  std::string_view operation = "unknown";
  /// What the key was found to be, for tokengate_auth_decisions_total: nullopt when the call was
  /// refused before its key was looked at (an unknown path, a wrong method);
  /// missing_permission for a key refused for what it may do.
  std::optional<verdict> decision{};
};

/// The `/api-tokens` API as a function from request to response (README "The token API").
/// Order of checks: route (404), method (405), key (401), address and permission (403), body
/// (400), then the operation; a change while the audit sink is not ready is refused with 503 and
/// not made. Thread-safe.
class api_handler {
public:
  /// `audit` (optional, outliving the handler) receives every token change and every call
  /// refused with 401 or 403.
  api_handler(token_service& service, const authorizer& auth, const clock& clock,
              audit_sink* audit = nullptr);

  /// Whether `path` (normalised) belongs to the API rather than the upstream.
  [[nodiscard]] static bool is_api_path(std::string_view path) noexcept;

  /// The answer to `request` when it can be given without its body: an unknown route (404),
  /// a wrong method (405), a missing or bad key (401), an address or permission refusal (403).
  /// nullopt when the body is needed. Lets the I/O layer refuse before reading a body.
  [[nodiscard]] std::optional<api_response> refuse_early(const api_request& request) const;

  /// The answer to `request`. `unread_body`: its body could not be taken (too large, broken
  /// framing): the answer is that error instead of the operation's, with the caller named and
  /// the attempt audited as the operation's own failure would be.
  [[nodiscard]] api_response handle(const api_request& request,
                                    const std::optional<api_error>& unread_body = std::nullopt);

private:
  void audit_refusal(const api_request& request, const api_response& refusal) const;
  /// `before`, `after`: the token as the change found and left it (`before` as read ahead of a
  /// change that failed).
  void audit_change(const api_request& request, std::string_view operation, std::string_view id,
                    const std::optional<token>& before, const std::optional<token>& after,
                    const api_response& response);

  token_service& service_;
  const authorizer& auth_;
  const clock& clock_;
  audit_sink* audit_;
};

} // namespace tokengate::tokenapi
