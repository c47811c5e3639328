#include "http/admin.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/clock.hpp"
#include "http/errors.hpp"
#include "http/validation.hpp"

namespace postd::http {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view bearer = "Bearer ";
constexpr double max_for_s = 86400; // a day: longer is a mistake

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// The board as GET shows it: each fault in force, its value and when it
// clears by itself (null: when cleared).
api_response state(const core::fault_board& board) {
  ojson faults = ojson::object();
  auto steady_now = core::fault_board::clock::now();
  auto wall_now = std::chrono::system_clock::now();
  for (const auto& f : board.active()) {
    const auto& spec = core::spec_of(f.id);
    ojson entry;
    if (spec.whole)
      entry["value"] = static_cast<long long>(f.value);
    else
      entry["value"] = f.value;
    entry["until"] =
        f.until ? ojson(core::iso_utc(wall_now +
                                      std::chrono::duration_cast<
                                          std::chrono::system_clock::duration>(
                                          *f.until - steady_now)))
                : ojson(nullptr);
    faults[std::string(spec.name)] = std::move(entry);
  }
  api_response r;
  r.status = 200;
  r.body = ojson{{"faults", faults}}.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

const core::fault_spec* find_spec(std::string_view name) {
  for (const auto& spec : core::fault_specs)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

std::string known_names() {
  std::string names;
  for (const auto& spec : core::fault_specs)
    names.append(names.empty() ? "" : ", ").append(spec.name);
  return names + ", for";
}

struct fault_change {
  core::fault id;
  double value;
};

// The body's faults and "for", or the messages of what is wrong with it.
struct parsed_change {
  std::vector<fault_change> changes;
  std::optional<double> for_s;
  std::vector<std::string> errors;
};

void parse_value(parsed_change& out, const std::string& name,
                 const nlohmann::json& value) {
  if (name == "for") {
    if (!value.is_number() || !(value.get<double>() > 0) ||
        value.get<double>() > max_for_s)
      out.errors.emplace_back("for must be a number of seconds above 0, at "
                              "most 86400");
    else
      out.for_s = value.get<double>();
    return;
  }
  const auto* spec = find_spec(name);
  if (spec == nullptr) {
    out.errors.push_back("unknown fault '" + name +
                         "' (known: " + known_names() + ")");
    return;
  }
  double v = value.is_number() ? value.get<double>() : -1;
  bool whole_ok = !spec->whole || std::floor(v) == v;
  if (!value.is_number() || !(v >= 0) || v > spec->max || !whole_ok) {
    out.errors.push_back(name + " must be " +
                         (spec->whole
                              ? "a whole number of milliseconds from 0 to 60000"
                              : std::string("a chance from 0 to 1")));
    return;
  }
  out.changes.push_back({spec->id, v});
}

parsed_change parse_body(const std::string& body) {
  parsed_change out;
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    out.errors.emplace_back("the body must be a JSON object of faults");
    return out;
  }
  for (const auto& [name, value] : json.items())
    parse_value(out, name, value);
  if (out.errors.empty() && out.changes.empty())
    out.errors.push_back("name at least one fault (known: " + known_names() +
                         ")");
  return out;
}

api_response put_faults(const api_request& req, core::fault_board& board) {
  if (!is_json_content_type(req.content_type))
    return error_response(415, "Content-Type must be application/json");
  auto parsed = parse_body(req.body);
  if (!parsed.errors.empty())
    return error_response(400, parsed.errors);
  std::optional<core::fault_board::clock::time_point> until;
  if (parsed.for_s)
    until = core::fault_board::clock::now() +
            std::chrono::duration_cast<core::fault_board::clock::duration>(
                std::chrono::duration<double>{*parsed.for_s});
  for (const auto& c : parsed.changes)
    board.set(c.id, c.value, c.value == 0 ? std::nullopt : until);
  return state(board);
}

} // namespace

bool admin_authorized(std::string_view authorization, std::string_view token) {
  if (token.empty() || authorization.size() < bearer.size() ||
      authorization.substr(0, bearer.size()) != bearer)
    return false;
  auto given = digest(authorization.substr(bearer.size()));
  auto expected = digest(token);
  return CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
}

api_response admin_faults(const api_request& req, core::fault_board& board,
                          std::string_view admin_token) {
  if (!admin_authorized(req.authorization, admin_token)) {
    auto r = bare_error_response(401, "Unauthorized");
    r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="postd admin")");
    return r;
  }
  if (req.method == "PUT")
    return put_faults(req, board);
  if (req.method == "DELETE")
    board.clear();
  return state(board);
}

} // namespace postd::http
