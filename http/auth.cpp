#include "http/auth.hpp"

#include <jwt/base64.hpp>
#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace postd::http {

namespace {

constexpr std::string_view bearer = "Bearer ";

std::optional<std::string> claim_as_id(const nlohmann::json& payload,
                                       const char* name) {
  if (!payload.contains(name))
    return std::nullopt;
  const auto& v = payload[name];
  if (v.is_string() && !v.get<std::string>().empty())
    return v.get<std::string>();
  if (v.is_number_integer())
    return v.dump();
  return std::nullopt;
}

// A JWS in compact form: three base64url parts (padding tolerated) joined by
// dots. Anything else is refused before cpp-jwt sees it: its base64 decoder
// indexes a table with a signed char, so a byte >= 0x80 reads outside it.
bool compact_jws_shape(std::string_view token) {
  int dots = 0;
  for (char ch : token) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '.')
      ++dots;
    else if (!std::isalnum(c) && c != '-' && c != '_' && c != '=')
      return false;
  }
  return dots == 2;
}

// cpp-jwt reads exp, nbf and iat as unsigned 64-bit integers while it
// verifies: a float beyond that range (1e300) would be undefined behaviour.
// Checked on the payload first; true when they are absent or in range.
bool time_claims_in_range(std::string_view token) {
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  auto payload = nlohmann::json::parse(
      jwt::base64_uri_decode(token.data() + first + 1, second - first - 1),
      nullptr, false);
  if (!payload.is_object())
    return false;
  for (const char* claim : {"exp", "nbf", "iat"}) {
    auto it = payload.find(claim);
    if (it == payload.end() || it->is_number_integer())
      continue;
    if (!it->is_number_float())
      return false;
    double v = it->get<double>();
    if (!(v >= 0 && v < 1e15)) // about 31 million years
      return false;
  }
  return true;
}

// `exp` (seconds since the epoch) as a time point. system_clock counts
// nanoseconds in 64 bits, up to the year 2262: a later exp never expires
// (converting it would overflow), and one before the epoch has expired.
std::chrono::system_clock::time_point expiry(double exp) {
  using clock = std::chrono::system_clock;
  constexpr auto last =
      std::chrono::duration_cast<std::chrono::seconds>(clock::duration::max())
          .count();
  if (!(exp < static_cast<double>(last)))
    return clock::time_point::max();
  if (!(exp > 0))
    return clock::time_point{};
  return clock::time_point{std::chrono::duration_cast<clock::duration>(
      std::chrono::seconds{static_cast<long long>(exp)})};
}

} // namespace

std::optional<std::string>
token_verifier::author(std::string_view authorization) const {
  if (!core::istarts_with(authorization, bearer))
    return std::nullopt;
  auto token = authorization.substr(bearer.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  if (token.empty() || token.size() > 8192 || !compact_jws_shape(token))
    return std::nullopt;
  auto now = std::chrono::system_clock::now();
  {
    std::lock_guard<std::mutex> guard{cache_->mtx};
    auto it = cache_->entries.find(std::string{token});
    if (it != cache_->entries.end()) {
      if (now < it->second.expires)
        return it->second.author;
      cache_->entries.erase(it);
      return std::nullopt;
    }
  }
  return verify_token(token);
}

std::optional<std::string>
token_verifier::verify_token(std::string_view token) const {
  try {
    if (!time_claims_in_range(token))
      return std::nullopt;
    using namespace jwt::params;
    std::error_code ec;
    auto obj =
        jwt::decode(jwt::string_view{token.data(), token.size()},
                    algorithms({"HS256"}), ec, secret(secret_), verify(true));
    // Refuse anything but HS256 ourselves too: `none` must never pass.
    if (ec || obj.header().algo() != jwt::algorithm::HS256)
      return std::nullopt;
    const auto& payload = obj.payload().create_json_obj();
    auto author = claim_as_id(payload, "sub");
    if (!author)
      author = claim_as_id(payload, "id");
    if (!author)
      return std::nullopt;
    auto expires = std::chrono::system_clock::time_point::max();
    if (payload.contains("exp")) {
      if (!payload["exp"].is_number())
        return std::nullopt;
      expires = expiry(payload["exp"].get<double>());
      // jsonwebtoken: expired once now >= exp (cpp-jwt lets the whole
      // second of exp pass).
      if (std::chrono::system_clock::now() >= expires)
        return std::nullopt;
    }
    std::lock_guard<std::mutex> guard{cache_->mtx};
    if (cache_->entries.size() >= cache::max_entries)
      cache_->entries.clear();
    cache_->entries.emplace(std::string{token}, cache::entry{*author, expires});
    return author;
  } catch (const std::exception&) {
    // Malformed base64 or JSON inside the token: just not authenticated.
    return std::nullopt;
  }
}

std::string token_verifier::issue(const std::string& subject,
                                  std::chrono::seconds ttl) const {
  using namespace jwt::params;
  auto now = std::chrono::system_clock::now();
  jwt::jwt_object obj{algorithm("HS256"), secret(secret_),
                      payload({{"sub", subject}})};
  obj.add_claim("iat", now).add_claim("exp", now + ttl);
  return obj.signature();
}

} // namespace postd::http
