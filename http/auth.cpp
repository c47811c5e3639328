#include "http/auth.hpp"

#include <jwt/jwt.hpp>

namespace postd::http {

namespace {

constexpr std::string_view bearer = "Bearer ";

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

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

} // namespace

std::optional<std::string>
token_verifier::author(std::string_view authorization) const {
  if (!iequals_prefix(authorization, bearer))
    return std::nullopt;
  auto token = authorization.substr(bearer.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  if (token.empty() || token.size() > 8192)
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
      expires = std::chrono::system_clock::time_point{std::chrono::seconds{
          static_cast<long long>(payload["exp"].get<double>())}};
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
