#pragma once

// Bearer JWT (HS256) as the old service's passport-jwt checked them.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace postd::http {

class token_verifier {
public:
  explicit token_verifier(std::string secret) : secret_(std::move(secret)) {}

  // The author id of a valid `Authorization: Bearer <jwt>` header: the `sub`
  // claim, else `id`. nullopt for a missing header, another scheme, a
  // malformed token, an algorithm other than HS256, a bad signature or an
  // expired `exp`.
  std::optional<std::string> author(std::string_view authorization) const;

  // A token for `subject`, valid for `ttl` (for `postd token` and tests).
  std::string issue(const std::string& subject, std::chrono::seconds ttl) const;

private:
  std::string secret_;
};

} // namespace postd::http
