#include "persistence/redis_rate_limiter.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "core/hex.hpp"

namespace postd::persistence {

namespace {

// core::rate_limiter::hit for a batch, on the Redis server's clock: see the
// script for the packed state it keeps per key.
const lua_script hit_script = lua_script::embedded("hitRateLimit");

constexpr std::size_t reply_fields = 4;

// 128 bits of SHA-256: fixed length, any bytes in, no collisions in practice.
std::string hex_digest(std::string_view key) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(),
         digest.data());
  return core::to_hex(
      std::string_view(reinterpret_cast<const char*>(digest.data()), 16));
}

// As rate_limiter reports them: whole ms, then seconds rounded up.
std::int64_t seconds_up(long long us) {
  const long long ms = us / 1000;
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

core::throttle_decision decision(const rate_limit_settings& s,
                                 const redisReply* const* f) {
  core::throttle_decision d;
  d.allowed = reply_integer(f[0]) == 1;
  d.limit = s.limit;
  d.remaining = std::max<std::int64_t>(0, s.limit - reply_integer(f[1]));
  d.reset_s = seconds_up(reply_integer(f[2]));
  d.retry_after_s = d.allowed ? 0 : seconds_up(reply_integer(f[3]));
  return d;
}

} // namespace

std::string rate_limit_key(const rate_limit_settings& s, std::string_view key) {
  return s.key_prefix + hex_digest(key);
}

std::vector<core::throttle_decision>
hit_batch(redis_client& redis, const rate_limit_settings& s,
          const std::vector<std::string>& keys) {
  if (s.ttl < std::chrono::milliseconds{1} || s.limit < 0)
    throw std::invalid_argument("rate limit needs ttl >= 1 ms, limit >= 0");
  if (keys.empty())
    return {};
  std::vector<std::string> redis_keys;
  redis_keys.reserve(keys.size());
  for (const auto& k : keys)
    redis_keys.push_back(rate_limit_key(s, k));
  auto r = redis.eval(
      hit_script, redis_keys,
      {std::to_string(s.limit), std::to_string(s.ttl.count() * 1000)});
  if (reply_is_error(r.get()))
    throw redis_reply_error("hit_batch: " + reply_string(r.get()));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != reply_fields * keys.size())
    throw redis_reply_error("hit_batch: unexpected reply: " +
                            reply_string(r.get()));
  std::vector<core::throttle_decision> out;
  out.reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    out.push_back(decision(s, r->element + reply_fields * i));
  return out;
}

} // namespace postd::persistence
