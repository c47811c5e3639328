// Bearer tokens (http/auth.hpp). The input is read two ways:
//  - as the Authorization header, and as the token after "Bearer ";
//  - as a token's header and payload JSON (split at the first newline),
//    signed HS256 with the verifier's secret, so the claims are reached,
//    and with another secret, which must always be refused.
// Never an exception; an accepted token names a non-empty author, and asking
// again (now from the cache) gives the same answer.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.hpp"
#include "http/auth.hpp"

namespace {

using postd::http::token_verifier;

constexpr std::string_view secret = "fuzz-secret";

std::string base64url(std::string_view in) {
  static constexpr char digits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) |
             (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
             std::uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6)
      out += digits[(n >> s) & 63];
  }
  if (auto rest = in.size() - i; rest > 0) {
    std::uint32_t n = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (rest == 2)
      n |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
    if (rest == 2)
      out += digits[(n >> 6) & 63];
  }
  return out;
}

std::string signed_token(std::string_view header, std::string_view payload,
                         std::string_view key) {
  auto input = base64url(header) + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  FUZZ_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                  reinterpret_cast<const unsigned char*>(input.data()),
                  input.size(), mac, &len) != nullptr);
  return input + "." +
         base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::optional<std::string> ask(const token_verifier& v,
                               const std::string& authorization) {
  auto first = v.author(authorization);
  FUZZ_CHECK(!first || !first->empty());
  FUZZ_CHECK(v.author(authorization) == first);
  return first;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static const token_verifier verifier{std::string(secret)};
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ask(verifier, std::string(in));
  ask(verifier, "Bearer " + std::string(in));

  auto nl = in.find('\n');
  auto header = nl == std::string_view::npos
                    ? std::string_view(R"({"alg":"HS256","typ":"JWT"})")
                    : in.substr(0, nl);
  auto payload = nl == std::string_view::npos ? in : in.substr(nl + 1);
  ask(verifier, "Bearer " + signed_token(header, payload, secret));
  FUZZ_CHECK(!ask(verifier,
                  "Bearer " + signed_token(header, payload, "other-secret")));
  return 0;
}
