#include "persistence/redis_rate_limiter.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

namespace postd::persistence {

namespace {

// actors::rate_limiter::hit for a batch, on the Redis server's clock.
//   KEYS  one per hit, in order (a key may repeat)
//   ARGV[1] limit  ARGV[2] ttl in us
// A key is a string of little-endian doubles (struct.pack "<d..."):
//   window end, block end (0 = not blocked), hits in the window,
//   then per slot, oldest first: its start, hits in it.
// Times are us of TIME (exact in a double until the year 2255). As in the
// in-memory limiter, a hit within ttl/64 of the newest slot's start joins
// it, so a key holds at most 64 slots (1 KiB), and a slot expires ttl after
// its start. Packed so that a batch costs one MGET, then one SET per key,
// and no Lua work per slot: a hash of slot -> hits cost ~5x more per hit
// once a window had filled up.
// The keys are ours (prefix and digest): whatever else one holds (another
// type, a state ending more than a window from now) is replaced, as by a key
// seen for the first time, so a stray value cannot fail every batch.
// Returns per hit: allowed (1|0), hits in the window, us until the window
// ends, us until the block ends (0 when not blocked).
const lua_script hit_script{R"lua(
local rcall = redis.call
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local width = ttl / 64
local t = rcall("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local formats = {}
local function format(n)
  formats[n] = formats[n] or "<" .. string.rep("d", n)
  return formats[n]
end

-- The slots are st.slots[lo..hi] as start, hits pairs; lo > hi: none.
local function load(key, v)
  local n = v and #v / 8 or 0
  if n >= 3 and n <= 3 + 2 * 64 and n % 2 == 1 then
    local s = {struct.unpack(format(n), v)}
    -- No state of ours ends later than a window from now (NaN fails too).
    local far = now + ttl
    if s[1] <= far and s[2] <= far and s[n - 1] <= far then
      local b = s[2] > 0 and s[2] or nil
      return {key = key, w = s[1], b = b, total = s[3], slots = s, lo = 4,
              hi = n}
    end
  end
  return {key = key, total = 0, slots = {}, lo = 1, hi = 0}
end

local function expire(st)
  local s = st.slots
  while st.lo < st.hi and s[st.lo] + ttl <= now do
    st.total = st.total - s[st.lo + 1]
    st.lo = st.lo + 2
  end
end

local function addHit(st)
  local s, hi = st.slots, st.hi
  if st.lo < hi and now - s[hi - 1] < width then
    s[hi] = s[hi] + 1
  else
    s[hi + 1], s[hi + 2], st.hi = now, 1, hi + 2
  end
  st.total = st.total + 1
end

-- rate_limiter::hit, step by step.
local function hit(st, out)
  if not st.w or st.w <= now then st.w = now + ttl end
  expire(st)
  local blocked = st.b ~= nil
  if not blocked then addHit(st) end
  if not blocked and st.total > limit then st.b = now + ttl end
  if st.b and st.b <= now then
    st.b, st.total, st.lo = nil, 0, st.hi + 1
    addHit(st)
  end
  out[#out + 1] = st.b and 0 or 1
  out[#out + 1] = st.total
  out[#out + 1] = st.w - now
  out[#out + 1] = st.b and st.b - now or 0
end

-- The key lives until its window, its block and its newest slot have all
-- ended, after which it would act as a new key.
local function save(st)
  local s, lo, hi = st.slots, st.lo, st.hi
  local idle = math.max(st.w, st.b or 0)
  if lo < hi then idle = math.max(idle, s[hi - 1] + ttl) end
  local packed = struct.pack(format(3 + hi - lo + 1), st.w, st.b or 0,
                             st.total, unpack(s, lo, hi))
  rcall("SET", st.key, packed, "PX", math.ceil((idle - now) / 1000))
end

local states, distinct = {}, {}
for from = 1, #KEYS, 5000 do
  local to = math.min(from + 4999, #KEYS)
  local values = rcall("MGET", unpack(KEYS, from, to))
  for i = from, to do
    local key = KEYS[i]
    if not states[key] then
      states[key] = load(key, values[i - from + 1])
      distinct[#distinct + 1] = states[key]
    end
  end
end
local out = {}
for _, key in ipairs(KEYS) do hit(states[key], out) end
for _, st in ipairs(distinct) do save(st) end
return out
)lua"};

constexpr std::size_t reply_fields = 4;

// 128 bits of SHA-256: fixed length, any bytes in, no collisions in practice.
std::string hex_digest(std::string_view key) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(),
         digest.data());
  static constexpr std::string_view hex = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (std::size_t i = 0; i < 16; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0x0f]);
  }
  return out;
}

// As rate_limiter reports them: whole ms, then seconds rounded up.
std::int64_t seconds_up(long long us) {
  const long long ms = us / 1000;
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

actors::throttle_decision decision(const rate_limit_settings& s,
                                   const redisReply* const* f) {
  actors::throttle_decision d;
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

std::vector<actors::throttle_decision>
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
  std::vector<actors::throttle_decision> out;
  out.reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    out.push_back(decision(s, r->element + reply_fields * i));
  return out;
}

} // namespace postd::persistence
