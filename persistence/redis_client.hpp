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

struct reply_deleter {
  void operator()(redisReply* r) const noexcept;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

using redis_command = std::vector<std::string>;

// One synchronous hiredis connection (RAII). Not thread-safe: one owner.
class redis_client {
public:
  // Connects and authenticates; throws redis_error on failure.
  explicit redis_client(const redis_options& opts);
  ~redis_client();
  redis_client(redis_client&&) noexcept;
  redis_client& operator=(redis_client&&) noexcept;
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  // Sends one command and waits for its reply. An error *reply* (e.g. a Lua
  // error) is returned as a reply of type REDIS_REPLY_ERROR; only transport
  // failures throw redis_error.
  reply_ptr command(const redis_command& argv);

  // Sends all commands in one write, then reads all replies (in order).
  std::vector<reply_ptr> pipeline(const std::vector<redis_command>& cmds);

  // Runs a Lua script by EVALSHA, loading it (SCRIPT LOAD) on NOSCRIPT.
  reply_ptr eval(std::string_view script, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args);

  // Temporarily uses another socket timeout (for BRPOPLPUSH etc.).
  void set_timeout(std::chrono::milliseconds t);

  bool broken() const noexcept { return broken_; }

private:
  [[noreturn]] void fail(std::string_view what);

  redisContext* ctx_ = nullptr;
  redis_options opts_;
  bool broken_ = false;
};

// Helpers to read replies without repeating type checks everywhere.
std::string reply_string(const redisReply* r); // "" for nil
long long reply_integer(const redisReply* r);  // also parses bulk strings
bool reply_is_error(const redisReply* r);

// SHA1 hex of a script, as Redis computes it for EVALSHA.
std::string script_sha1(std::string_view script);

} // namespace postd::persistence
