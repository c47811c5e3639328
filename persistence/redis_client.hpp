#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace postd::persistence {

struct redis_options {
  std::string host = "localhost";
  int port = 6379;
  std::string password;
  std::chrono::milliseconds connect_timeout{2000};
  // Socket timeout for ordinary commands; blocking commands pass their own.
  std::chrono::milliseconds command_timeout{5000};
};

// The connection is unusable (I/O error, timeout, protocol error) or the
// server could not be reached. A client that threw this is broken() and
// must be replaced, never reused.
class redis_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Redis answered, but with an error (OOM, READONLY, LOADING, a script error)
// or with a reply of the wrong shape, where the caller needed a result. The
// connection itself is fine: broken() stays false. Derives from redis_error
// so one handler covers both; broken() tells them apart.
class redis_reply_error : public redis_error {
public:
  using redis_error::redis_error;
};

struct reply_deleter {
  void operator()(redisReply* r) const noexcept;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

using redis_command = std::vector<std::string>;

// SHA1 hex of a script, as Redis computes it for EVALSHA.
std::string script_sha1(std::string_view script);

// A Lua script and its SHA1, computed once rather than at every call.
class lua_script {
public:
  explicit lua_script(std::string text)
      : text_(std::move(text)), sha_(script_sha1(text_)) {}
  // persistence/lua/<name>[-<number of keys>].lua, its includes resolved at
  // build time (cmake/LuaIncludes.cmake). Throws std::out_of_range for a
  // name no file has; scripts are loaded into globals, so a wrong name stops
  // postd at start-up.
  static lua_script embedded(std::string_view name);

  const std::string& text() const noexcept { return text_; }
  const std::string& sha() const noexcept { return sha_; }

private:
  std::string text_;
  std::string sha_;
};

// One synchronous hiredis connection (RAII). Not thread-safe: one owner.
class redis_client {
public:
  // Connects and authenticates; throws redis_error on failure. A moved-from
  // client is broken().
  explicit redis_client(redis_options opts);
  ~redis_client();
  redis_client(redis_client&& other) noexcept;
  redis_client& operator=(redis_client&& other) noexcept;
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  // Sends one command and waits for its reply. An error *reply* (e.g. a Lua
  // error) is returned as a reply of type REDIS_REPLY_ERROR; only transport
  // failures throw redis_error.
  reply_ptr command(const redis_command& argv);

  // Sends all commands in one write, then reads all replies (in order).
  std::vector<reply_ptr> pipeline(const std::vector<redis_command>& cmds);

  // Runs a Lua script by EVALSHA; on NOSCRIPT (server restarted or flushed)
  // sends it with EVAL, which also caches it again.
  reply_ptr eval(const lua_script& script, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args);
  reply_ptr eval(std::string_view script, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args);

  // Uses another socket timeout until called again (for BRPOPLPUSH etc.;
  // restore options().command_timeout afterwards).
  void set_timeout(std::chrono::milliseconds t);

  bool broken() const noexcept { return broken_; }
  const redis_options& options() const noexcept { return opts_; }

private:
  // Marks the client broken, frees the context and throws redis_error.
  [[noreturn]] void fail(std::string_view what);
  void ensure_usable();
  reply_ptr run(const std::vector<std::string_view>& args);

  redisContext* ctx_ = nullptr;
  redis_options opts_;
  bool broken_ = false;
};

// Helpers to read replies without repeating type checks everywhere.
std::string reply_string(const redisReply* r); // "" for nil
// Also parses bulk strings; 0 for nil; throws redis_reply_error otherwise.
long long reply_integer(const redisReply* r);
bool reply_is_error(const redisReply* r);

} // namespace postd::persistence
