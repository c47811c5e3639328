#include <thread>

#include <gtest/gtest.h>
#include <jwt/jwt.hpp>

#include "http/auth.hpp"

using postd::http::token_verifier;

namespace {

std::string sign(const nlohmann::json& claims, const std::string& key,
                 const char* alg = "HS256") {
  using namespace jwt::params;
  jwt::jwt_object obj{algorithm(alg), secret(key), payload({})};
  for (const auto& [k, v] : claims.items()) {
    if (v.is_string())
      obj.add_claim(k, v.get<std::string>());
    else
      obj.add_claim(k, v.get<long long>());
  }
  return obj.signature();
}

std::string b64url(const std::string& s) {
  auto enc = jwt::base64_encode(s.data(), s.size());
  auto n = jwt::base64_uri_encode(enc.data(),
                                  enc.size()); // in place, strips padding
  enc.resize(n);
  return enc;
}

long long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

TEST(Auth, IssuedTokensVerify) {
  token_verifier v{"secret"};
  auto token = v.issue("user-1", std::chrono::seconds{60});
  EXPECT_EQ(v.author("Bearer " + token), "user-1");
  EXPECT_EQ(v.author("bearer " + token), "user-1");
}

TEST(Auth, SubOrElseId) {
  token_verifier v{"k"};
  EXPECT_EQ(v.author("Bearer " + sign({{"id", "old-42"}}, "k")), "old-42");
  EXPECT_EQ(v.author("Bearer " + sign({{"sub", "s"}, {"id", "i"}}, "k")), "s");
  EXPECT_EQ(v.author("Bearer " + sign({{"id", 42}}, "k")), "42");
  EXPECT_EQ(v.author("Bearer " + sign({{"name", "x"}}, "k")), std::nullopt);
}

TEST(Auth, RefusesBadTokens) {
  token_verifier v{"k"};
  auto good = sign({{"sub", "u"}}, "k");
  EXPECT_EQ(v.author(""), std::nullopt);
  EXPECT_EQ(v.author(good), std::nullopt);            // no scheme
  EXPECT_EQ(v.author("Basic " + good), std::nullopt); // other scheme
  EXPECT_EQ(v.author("Bearer " + sign({{"sub", "u"}}, "other")), std::nullopt);
  EXPECT_EQ(v.author("Bearer not.a.token"), std::nullopt);
  EXPECT_EQ(v.author("Bearer abc"), std::nullopt);
  EXPECT_EQ(v.author("Bearer " + good + "x"),
            std::nullopt); // tampered signature
  EXPECT_EQ(
      v.author("Bearer " + sign({{"sub", "u"}, {"exp", now_s() - 10}}, "k")),
      std::nullopt);
  EXPECT_EQ(
      v.author("Bearer " + sign({{"sub", "u"}, {"exp", now_s() + 100}}, "k")),
      "u");
}

TEST(Auth, RefusesOtherAlgorithms) {
  token_verifier v{"k"};
  auto payload = b64url(R"({"sub":"admin"})");
  EXPECT_EQ(v.author("Bearer " + b64url(R"({"alg":"none","typ":"JWT"})") + "." +
                     payload + "."),
            std::nullopt);
  EXPECT_EQ(v.author("Bearer " + b64url(R"({"alg":"none"})") + "." + payload +
                     ".sig"),
            std::nullopt);
  EXPECT_EQ(v.author("Bearer " + sign({{"sub", "u"}}, "k", "HS512")),
            std::nullopt);
  EXPECT_EQ(v.author("Bearer " + sign({{"sub", "u"}}, "k", "HS384")),
            std::nullopt);
}

TEST(Auth, RememberedTokensStillExpire) {
  token_verifier v{"k"};
  auto soon = sign({{"sub", "u"}, {"exp", now_s() + 2}}, "k");
  EXPECT_EQ(v.author("Bearer " + soon), "u");
  EXPECT_EQ(v.author("Bearer " + soon), "u"); // from the cache
  std::this_thread::sleep_for(std::chrono::milliseconds{2100});
  EXPECT_EQ(v.author("Bearer " + soon), std::nullopt);
}

TEST(Auth, CacheIsPerSecret) {
  token_verifier a{"k"};
  token_verifier b{"other"};
  auto t = sign({{"sub", "u"}}, "k");
  EXPECT_EQ(a.author("Bearer " + t), "u");
  EXPECT_EQ(b.author("Bearer " + t), std::nullopt);
  EXPECT_EQ(a.author("Bearer " + t), "u");
}
