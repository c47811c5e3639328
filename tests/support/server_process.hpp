#pragma once

// Runs the real postd binary for end-to-end tests, and talks HTTP to it.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

namespace postd::testing {

using env_map = std::map<std::string, std::string>;

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class scratch_database;

// The environment an end-to-end test gives postd: its scratch database
// through PgBouncer, the test Redis, its own queue, a known JWT secret,
// 2 writers and 2 I/O threads, info logs (the start line names the port).
env_map postd_env(const scratch_database& db, const std::string& queue,
                  const std::string& jwt_secret);

// Runs `postd args...` to completion with the test's environment plus `env`;
// killed (exit code 128+9) when it runs longer than `timeout`.
run_result run_postd(const std::vector<std::string>& args, const env_map& env,
                     std::chrono::milliseconds timeout = std::chrono::seconds{
                         120});

// A free TCP port on 127.0.0.1 (bound, read, released).
int free_port();

class server_process {
public:
  // Starts `postd serve` with `env` added to the environment, on the PORT
  // given there, else on PORT=0: any free port, read from its start log line.
  // `max_open_files` > 0: its RLIMIT_NOFILE (ulimit -n).
  explicit server_process(env_map env, int max_open_files = 0);
  ~server_process();
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  // The port it listens on; with PORT=0, waits up to `timeout` for the start
  // log line (LOG_LEVEL info or lower) and throws std::runtime_error if none.
  int port(std::chrono::milliseconds timeout = std::chrono::seconds{20}) const;
  // Polls until /health answers 200 or the timeout passes.
  bool wait_healthy(std::chrono::milliseconds timeout);
  // Sends `sig` and returns (a running process only).
  void signal(int sig) const;
  // Sends `sig` and waits for the exit; returns the exit status (or 128+sig).
  int stop(int sig,
           std::chrono::milliseconds timeout = std::chrono::seconds{20});
  std::string output() const; // what it printed so far
  pid_t pid() const { return pid_; }

private:
  pid_t pid_ = -1;
  mutable int port_ = 0; // 0 until known
  std::string log_path_;
};

struct http_result {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers; // names lower-cased
};

// One request on a fresh connection to 127.0.0.1:port, from `source` when
// given (another loopback address, e.g. 127.0.0.2: another client as the
// server sees it). Throws std::runtime_error when no whole response came
// within `timeout` (a stalled server fails the test instead of hanging it),
// and boost::system::system_error when the connection fails.
http_result
http_call(int port, const std::string& method, const std::string& target,
          const std::string& body = {},
          const std::map<std::string, std::string>& headers = {},
          std::chrono::milliseconds timeout = std::chrono::seconds{10},
          const std::string& source = {});

// The value of one series in the server's /metrics, named with its labels
// as exposed (e.g. `postd_actor_running{actor="enqueue"}`); -1 when it
// cannot be read (absent, or this very request refused).
long long metric_value(int port, const std::string& series);

} // namespace postd::testing
