#pragma once

// Bearer JWT (HS256) as the old service's passport-jwt checked them.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postd::http {

class token_verifier {
public:
  explicit token_verifier(std::string secret)
      : secret_(std::move(secret)), cache_(std::make_shared<cache>()) {}

  // The author id of a valid `Authorization: Bearer <jwt>` header: the `sub`
  // claim, else `id`. nullopt for a missing header, another scheme, a
  // malformed token, an algorithm other than HS256, a bad signature or an
  // expired `exp`.
  std::optional<std::string> author(std::string_view authorization) const;

  // A token for `subject`, valid for `ttl` (for `postd token` and tests).
  std::string issue(const std::string& subject, std::chrono::seconds ttl) const;

private:
  // Clients send the same token with every request: a token verified once
  // is remembered (until its `exp`), which saves the base64, JSON and HMAC
  // work per request. Bounded: cleared when full.
  struct cache {
    struct entry {
      std::string author;
      std::chrono::system_clock::time_point expires; // max() without exp
    };
    static constexpr std::size_t max_entries = 4096;
    std::mutex mtx;
    std::unordered_map<std::string, entry> entries;
  };

  std::optional<std::string> verify_token(std::string_view token) const;

  std::string secret_;
  std::shared_ptr<cache> cache_;
};

} // namespace postd::http
