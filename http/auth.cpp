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
    if (auto sub = claim_as_id(payload, "sub"))
      return sub;
    return claim_as_id(payload, "id");
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
