#include "tokenapi/api.hpp"

#include "tokenapi/page_cursor.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <boost/json.hpp>

#include <charconv>

namespace tokengate::tokenapi {
namespace json = boost::json;
namespace {

constexpr std::string_view root = "/api-tokens";
constexpr std::size_t default_limit = 100;
constexpr std::size_t max_limit = 1000;
constexpr std::string_view audit_unavailable_message =
    "the audit trail cannot be written (audit_log_file): no change was made";

enum class operation { list, create, get, update, erase, rotate };

std::string_view name_of(operation op) {
  switch (op) {
  case operation::list:
    return "list";
  case operation::create:
    return "create";
  case operation::get:
    return "get";
  case operation::update:
    return "update";
  case operation::erase:
    return "delete";
  case operation::rotate:
    return "rotate";
  }
  return "unknown";
}

struct route {
  operation op;
  std::string_view id; ///< as written: a token id or "self"
};

// Splits "/api-tokens[/id[/rotate]]" into an operation; nullopt for a path the API lacks.
std::optional<std::pair<std::string_view, std::string_view>> split(std::string_view path) {
  if (!api_handler::is_api_path(path))
    return std::nullopt;
  auto rest = path.substr(root.size());
  if (rest.empty())
    return std::pair<std::string_view, std::string_view>{};
  rest.remove_prefix(1);
  const auto slash = rest.find('/');
  auto id = rest.substr(0, slash);
  auto tail = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (id.empty() || (!tail.empty() && tail != "rotate") ||
      (slash != std::string_view::npos && tail.empty()))
    return std::nullopt;
  return std::pair{id, tail};
}

// The route for (method, path), or the error (404, 405) to answer with.
api_result<route> resolve(std::string_view method, std::string_view path, std::string_view& allow) {
  auto parts = split(path);
  if (!parts)
    return not_found("no such API route");
  auto [id, tail] = *parts;
  // HEAD is GET without the body (RFC 9110 section 9.3.2); the server leaves the body out.
  const bool get = method == "GET" || method == "HEAD";
  if (id.empty()) {
    allow = "GET, HEAD, POST";
    if (get)
      return route{operation::list, {}};
    if (method == "POST")
      return route{operation::create, {}};
  } else if (tail.empty()) {
    allow = "GET, HEAD, POST, DELETE";
    if (get)
      return route{operation::get, id};
    if (method == "POST")
      return route{operation::update, id};
    if (method == "DELETE")
      return route{operation::erase, id};
  } else {
    allow = "POST";
    if (method == "POST")
      return route{operation::rotate, id};
  }
  return api_error{405, "method " + std::string(method.substr(0, 16)) + " is not allowed here"};
}

// Reads and modifies need these; `self` may always be read and rotated.
api_result<void> check_permission(const route& r, const auth_entry& caller) {
  const bool self = r.id == "self" || r.id == caller.id();
  const bool can_modify = caller.permissions().contains(permission::OrganizationAPITokenModify);
  const bool can_read =
      can_modify || caller.permissions().contains(permission::OrganizationAPITokenRead);
  switch (r.op) {
  case operation::get:
    if (self || can_read)
      return {};
    break;
  case operation::list:
    if (can_read)
      return {};
    break;
  case operation::rotate:
    if (self || can_modify)
      return {};
    return forbidden("API key lacks the permission OrganizationAPITokenModify");
  default:
    if (can_modify)
      return {};
    return forbidden("API key lacks the permission OrganizationAPITokenModify");
  }
  return forbidden("API key lacks the permission OrganizationAPITokenRead");
}

// A replaced value, during its overlap, may only read its own token: whoever holds only the old
// value must not be able to rotate the token again (taking the current value away from its
// owner), change or create tokens, or read others.
api_result<void> check_replaced_value(const route& r, const auth_entry& caller) {
  if (r.op == operation::get && (r.id == "self" || r.id == caller.id()))
    return {};
  return forbidden("a replaced API key cannot manage tokens; use the current value");
}

api_response answer(unsigned status, const json::object& body) {
  return {status, json::serialize(body), {}, {}};
}

api_response answer(const api_error& e) { return {e.status, error_body(e.message), {}, {}}; }

// The outcome of the checks that need no body: a refusal, or the route and its caller.
struct admission {
  std::optional<api_response> refusal;
  route r{};
  std::shared_ptr<const auth_entry> caller;
  bool previous_value = false;
};

admission admit(const authorizer& auth, timestamp now, const api_request& request) {
  admission a;
  std::string_view allow;
  auto r = resolve(request.method, request.path, allow);
  if (!r) {
    a.refusal = answer(r.error());
    if (a.refusal->status == 405)
      a.refusal->allow = allow;
    return a;
  }
  auto who = auth.decide(request.api_key, request.client, permission_set{}, now);
  const auto refuse = [&](const api_error& e) {
    a.refusal = answer(e);
    a.refusal->operation = name_of(r->op);
    a.refusal->decision = who.allowed() ? verdict::missing_permission : who.outcome;
    if (who.token) { // a known key (expired, or from outside its blocks): the trail names it
      a.refusal->caller_id = who.token->id();
      a.refusal->caller = who.token;
      a.refusal->previous_value = who.previous_value;
    }
    return std::move(a);
  };
  if (!who.allowed())
    return refuse({who.status(), who.message(request.client)});
  auto permitted =
      who.previous_value ? check_replaced_value(*r, *who.token) : check_permission(*r, *who.token);
  if (!permitted)
    return refuse(permitted.error());
  a.r = *r;
  a.caller = std::move(who.token);
  a.previous_value = who.previous_value;
  return a;
}

// GET /api-tokens: one page after the cursor, with "next" when there may be more.
api_response list_page(token_service& service, const api_request& request) {
  std::size_t limit = default_limit;
  const auto limit_param = query_param(request.query, "limit");
  const auto cursor_param = query_param(request.query, "cursor");
  if (!limit_param)
    return answer(limit_param.error());
  if (!cursor_param)
    return answer(cursor_param.error());
  if (const auto& text = *limit_param) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
    if (ec != std::errc() || end != text->data() + text->size() || limit < 1 || limit > max_limit)
      return answer(bad_request("\"limit\" must be an integer from 1 to 1000"));
  }
  std::string after;
  if (const auto& cursor = *cursor_param; cursor && !cursor->empty()) {
    auto decoded = decode_cursor(*cursor);
    if (!decoded)
      return answer(bad_request("invalid \"cursor\": pass the \"next\" of the previous page"));
    after = std::move(*decoded);
  }
  auto page = service.list(after, limit);
  if (!page)
    return answer(page.error());
  json::array results;
  for (const auto& t : page->tokens)
    results.emplace_back(to_api_json(t));
  json::object body{{"results", std::move(results)}};
  if (!page->last_id.empty())
    body["next"] = encode_cursor(page->last_id);
  return answer(200, body);
}

// The token a change found (the version it wrote over) and the one it left: the audit trail's.
struct change_versions {
  std::optional<token> before;
  std::optional<token> after;
};

// Runs an admitted call: the caller is authenticated and may call this operation. A change that
// is made notes its versions in `v`.
api_response perform(token_service& service, timestamp now, const route& r,
                     const auth_entry& caller, const api_request& request, change_versions& v) {
  const auto id = r.id == "self" ? caller.id() : r.id;

  switch (r.op) {
  case operation::list:
    return list_page(service, request);
  case operation::create: {
    auto spec = parse_token_spec(request.body, now);
    if (!spec)
      return answer(spec.error());
    auto created = service.create(caller, *spec);
    if (!created)
      return answer(created.error());
    v.after = created->t;
    return answer(200, to_api_json(created->t, created->value));
  }
  case operation::get: {
    auto t = service.get(id);
    if (!t)
      return answer(t.error());
    return answer(200, to_api_json(*t));
  }
  case operation::update: {
    auto spec = parse_token_spec(request.body, now);
    if (!spec)
      return answer(spec.error());
    v.before.emplace();
    auto t = service.update(caller, id, *spec, &*v.before);
    if (!t)
      return answer(t.error());
    v.after = *t;
    return answer(200, to_api_json(*t));
  }
  case operation::erase: {
    v.before.emplace();
    if (auto erased = service.erase(id, &*v.before); !erased)
      return answer(erased.error());
    return {204, {}, {}, {}};
  }
  case operation::rotate: {
    auto overlap = parse_rotate_body(request.body);
    if (!overlap)
      return answer(overlap.error());
    v.before.emplace();
    auto rotated = service.rotate(caller, id, std::chrono::seconds(*overlap), &*v.before);
    if (!rotated)
      return answer(rotated.error());
    v.after = rotated->t;
    return answer(200, to_api_json(rotated->t, rotated->value));
  }
  }
  return answer(api_error{500, "unhandled operation"});
}

// The names of the fields a successful change touched (never their values).
std::vector<std::string> changed_fields(std::string_view operation,
                                        const std::optional<token>& before,
                                        const std::optional<token>& after) {
  if (operation == "rotate")
    return {"value"};
  if (!after)
    return {};
  const token empty;
  const auto& old = before ? *before : empty;
  std::vector<std::string> changed;
  if (old.name != after->name)
    changed.emplace_back("name");
  if (old.permissions.join(",") != after->permissions.join(","))
    changed.emplace_back("permissions");
  if (old.allowed_cidr_blocks != after->allowed_cidr_blocks)
    changed.emplace_back("allowedCIDRBlocks");
  if (old.expires_at != after->expires_at)
    changed.emplace_back("expiresAt");
  if (old.rate_limit != after->rate_limit)
    changed.emplace_back("rateLimit");
  return changed;
}

} // namespace

api_handler::api_handler(token_service& service, const authorizer& auth, const clock& clock,
                         audit_sink* audit)
    : service_(service), auth_(auth), clock_(clock), audit_(audit) {}

bool api_handler::is_api_path(std::string_view path) noexcept {
  return path.starts_with(root) && (path.size() == root.size() || path[root.size()] == '/');
}

std::optional<api_response> api_handler::refuse_early(const api_request& request) const {
  auto refusal = admit(auth_, clock_.now(), request).refusal;
  if (refusal)
    audit_refusal(request, *refusal);
  return refusal;
}

api_response api_handler::handle(const api_request& request,
                                 const std::optional<api_error>& unread_body) {
  const auto now = clock_.now();
  auto a = admit(auth_, now, request);
  if (a.refusal) {
    audit_refusal(request, *a.refusal);
    return std::move(*a.refusal);
  }
  const auto id = a.r.id == "self" ? a.caller->id() : a.r.id;
  const bool changes = a.r.op != operation::list && a.r.op != operation::get;
  std::optional<token> before;
  if (changes && a.r.op != operation::create)
    if (auto t = service_.get(id))
      before = std::move(*t);
  change_versions versions;
  // Fail closed: no change that the audit trail could not keep (its held events go first).
  const bool trail_down = changes && !unread_body && audit_ && !audit_->ready();
  auto response = unread_body  ? answer(*unread_body)
                  : trail_down ? answer(api_error{503, std::string(audit_unavailable_message)})
                               : perform(service_, now, a.r, *a.caller, request, versions);
  response.caller_id = a.caller->id();
  response.caller = a.caller;
  response.previous_value = a.previous_value;
  response.operation = name_of(a.r.op);
  response.decision = verdict::allow;
  if (changes) {
    // The versions the change went between, when it was made (a token changed elsewhere
    // meanwhile was read again): not the one read above.
    if (response.status < 300 && versions.before && !versions.before->id.empty())
      before = std::move(versions.before);
    audit_change(request, response.operation, id, before, versions.after, response);
  }
  return response;
}

void api_handler::audit_refusal(const api_request& request, const api_response& refusal) const {
  if (!audit_ || (refusal.status != 401 && refusal.status != 403))
    return;
  audit_event e;
  e.operation = refusal.operation;
  e.actor_id = refusal.caller_id;
  e.client = request.client.to_string();
  e.status = refusal.status;
  e.previous_value = refusal.previous_value;
  audit_->record(e);
}

void api_handler::audit_change(const api_request& request, std::string_view operation,
                               std::string_view id, const std::optional<token>& before,
                               const std::optional<token>& after, const api_response& response) {
  if (!audit_)
    return;
  audit_event e;
  e.operation = operation;
  e.actor_id = response.caller_id;
  e.client = request.client.to_string();
  e.status = response.status;
  e.target_id = holds_value(id) ? redact_values(id) : std::string(id); // a pasted key stays out
  if (before)
    e.target_name = before->name;
  if (after) { // its id (new for create) and name as the change left them
    e.target_id = after->id;
    e.target_name = after->name;
  }
  if (response.status < 300)
    e.changed = changed_fields(operation, before, after);
  audit_->record(e);
}

} // namespace tokengate::tokenapi
