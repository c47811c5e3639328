#include "persistence/redis_client.hpp"

#include <array>
#include <charconv>
#include <climits>
#include <stdexcept>
#include <utility>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include "core/hex.hpp"

namespace postd::persistence {

namespace {

timeval to_timeval(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(t.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((t.count() % 1000) * 1000);
  return tv;
}

// hiredis wants parallel arrays of pointers and lengths; passing lengths
// keeps arguments binary-safe (embedded NULs survive).
class argv_view {
public:
  explicit argv_view(const std::vector<std::string_view>& args) {
    if (args.empty() || args.size() > static_cast<std::size_t>(INT_MAX))
      throw std::invalid_argument("redis command needs 1..INT_MAX arguments");
    ptrs_.reserve(args.size());
    lens_.reserve(args.size());
    for (auto a : args) {
      ptrs_.push_back(a.data());
      lens_.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(ptrs_.size()); }
  const char** argv() { return ptrs_.data(); }
  const std::size_t* lens() const { return lens_.data(); }

private:
  std::vector<const char*> ptrs_;
  std::vector<std::size_t> lens_;
};

std::vector<std::string_view> views(const redis_command& cmd) {
  return {cmd.begin(), cmd.end()};
}

bool starts_with(const redisReply* r, std::string_view prefix) {
  return r != nullptr && r->str != nullptr && r->len >= prefix.size() &&
         std::string_view(r->str, prefix.size()) == prefix;
}

} // namespace

void reply_deleter::operator()(redisReply* r) const noexcept {
  freeReplyObject(r);
}

redis_client::redis_client(redis_options opts) : opts_(std::move(opts)) {
  ctx_ = redisConnectWithTimeout(opts_.host.c_str(), opts_.port,
                                 to_timeval(opts_.connect_timeout));
  if (ctx_ == nullptr)
    fail("cannot allocate a connection");
  if (ctx_->err != 0)
    fail("cannot connect");
  if (redisSetTimeout(ctx_, to_timeval(opts_.command_timeout)) != REDIS_OK)
    fail("cannot set the socket timeout");
  // A peer that vanished (host down, NAT dropped) is noticed even when idle.
  if (redisEnableKeepAlive(ctx_) != REDIS_OK)
    fail("cannot enable TCP keep-alive");
  if (!opts_.password.empty()) {
    auto r = command({"AUTH", opts_.password});
    if (r->type == REDIS_REPLY_ERROR)
      fail("AUTH refused: " + reply_string(r.get()));
  }
}

redis_client::~redis_client() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

redis_client::redis_client(redis_client&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), opts_(std::move(other.opts_)),
      broken_(std::exchange(other.broken_, true)) {}

redis_client& redis_client::operator=(redis_client&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr)
      redisFree(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    opts_ = std::move(other.opts_);
    broken_ = std::exchange(other.broken_, true);
  }
  return *this;
}

void redis_client::fail(std::string_view what) {
  std::string msg = "redis " + opts_.host + ":" + std::to_string(opts_.port) +
                    ": " + std::string(what);
  if (ctx_ != nullptr && ctx_->err != 0)
    msg += ": " + std::string(ctx_->errstr);
  // The context may hold half a reply or unsent bytes: drop it for good.
  broken_ = true;
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  throw redis_error(msg);
}

void redis_client::ensure_usable() {
  if (broken_ || ctx_ == nullptr)
    throw redis_error("redis " + opts_.host + ":" + std::to_string(opts_.port) +
                      ": the connection is broken; make a new client");
}

reply_ptr redis_client::command(const redis_command& argv) {
  return run(views(argv));
}

reply_ptr redis_client::run(const std::vector<std::string_view>& args) {
  ensure_usable();
  argv_view v(args);
  void* raw = redisCommandArgv(ctx_, v.argc(), v.argv(), v.lens());
  if (raw == nullptr)
    fail("command failed");
  return reply_ptr(static_cast<redisReply*>(raw));
}

std::vector<reply_ptr>
redis_client::pipeline(const std::vector<redis_command>& cmds) {
  ensure_usable();
  for (const auto& cmd : cmds) {
    argv_view v(views(cmd));
    if (redisAppendCommandArgv(ctx_, v.argc(), v.argv(), v.lens()) != REDIS_OK)
      fail("cannot buffer a pipelined command");
  }
  std::vector<reply_ptr> replies;
  replies.reserve(cmds.size());
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr)
      fail("pipeline failed");
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

reply_ptr redis_client::eval(std::string_view script,
                             const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  return eval(lua_script{std::string(script)}, keys, args);
}

reply_ptr redis_client::eval(const lua_script& script,
                             const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  const std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.insert(argv.end(), {"EVALSHA", script.sha(), nkeys});
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  // A restarted or flushed server forgets scripts: EVAL runs the script and
  // caches it again, in the same round trip.
  if (r->type == REDIS_REPLY_ERROR && starts_with(r.get(), "NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = script.text();
    r = run(argv);
  }
  return r;
}

void redis_client::set_timeout(std::chrono::milliseconds t) {
  ensure_usable();
  if (redisSetTimeout(ctx_, to_timeval(t)) != REDIS_OK)
    fail("cannot set the socket timeout");
}

std::string reply_string(const redisReply* r) {
  if (r == nullptr)
    return {};
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    return r->str == nullptr ? std::string() : std::string(r->str, r->len);
  case REDIS_REPLY_INTEGER:
    return std::to_string(r->integer);
  default:
    return {};
  }
}

long long reply_integer(const redisReply* r) {
  if (r == nullptr || r->type == REDIS_REPLY_NIL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER)
    return r->integer;
  if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
      r->str != nullptr) {
    long long v = 0;
    const char* end = r->str + r->len;
    auto [ptr, ec] = std::from_chars(r->str, end, v);
    if (ec == std::errc() && ptr == end)
      return v;
  }
  throw redis_reply_error("expected an integer reply, got: " + reply_string(r));
}

bool reply_is_error(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR;
}

namespace detail {
// Defined in the embedded_lua_scripts.cpp that cmake/EmbedFiles.cmake
// generates from persistence/lua/*.lua: (command name, resolved script).
std::vector<std::pair<std::string_view, std::string_view>>
embedded_lua_scripts();
} // namespace detail

lua_script lua_script::embedded(std::string_view name) {
  for (auto [script_name, text] : detail::embedded_lua_scripts())
    if (script_name == name)
      return lua_script{std::string(text)};
  throw std::out_of_range("no Lua script persistence/lua/" + std::string(name) +
                          "[-<keys>].lua was built in");
}

std::string script_sha1(std::string_view script) {
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(),
       digest.data());
  return core::to_hex(std::string_view(
      reinterpret_cast<const char*>(digest.data()), digest.size()));
}

} // namespace postd::persistence
