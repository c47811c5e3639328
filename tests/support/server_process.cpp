#include "support/server_process.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/test_env.hpp"

extern char** environ;

namespace postd::testing {

namespace {

std::string postd_bin() {
#ifdef POSTD_BIN
  return POSTD_BIN;
#else
  return require_env("POSTD_BIN");
#endif
}

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec with stdout/stderr redirected to files.
pid_t spawn(const std::vector<std::string>& args, const env_map& env,
            const std::string& out_path, const std::string& err_path,
            int max_open_files = 0) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    if (!env.count(kv.substr(0, kv.find('='))))
      env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env)
    env_strings.push_back(k + "=" + v);
  std::vector<std::string> argv_strings{postd_bin()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (max_open_files > 0) {
      rlimit limit{static_cast<rlim_t>(max_open_files),
                   static_cast<rlim_t>(max_open_files)};
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    std::vector<char*> argv;
    for (auto& a : argv_strings)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

int exit_code_of(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` to exit, killing it (SIGKILL) once `timeout` has passed;
// returns its exit code (128+signal when a signal ended it).
int wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return exit_code_of(status);
}

std::string temp_path(const std::string& stem) {
  return "/tmp/" + unique_name(stem);
}

std::optional<int> listening_port(const std::string& log) {
  // {"msg":"postd listening",...,"port":41234,...} or, as text,
  // `... postd listening ... port=41234 ...`
  auto line_start = log.find("postd listening");
  if (line_start == std::string::npos)
    return std::nullopt;
  auto line_end = log.find('\n', line_start);
  if (line_end == std::string::npos)
    return std::nullopt; // not written whole yet
  auto line = log.substr(line_start, line_end - line_start);
  for (const char* key : {"\"port\":", "port="}) {
    auto at = line.find(key);
    if (at != std::string::npos)
      return std::atoi(line.c_str() + at + std::strlen(key));
  }
  return std::nullopt;
}

} // namespace

env_map postd_env(const scratch_database& db, const std::string& queue,
                  const std::string& jwt_secret) {
  auto redis = test_redis();
  return {{"DATABASE_URL", db.pgbouncer_url()},
          {"REDIS_HOST", redis.host},
          {"REDIS_PORT", std::to_string(redis.port)},
          {"JWT_SECRET", jwt_secret},
          {"QUEUE_NAME", queue},
          {"WRITERS", "2"},
          {"HTTP_THREADS", "2"},
          {"LOG_LEVEL", "info"}}; // info: the start line names the port
}

run_result run_postd(const std::vector<std::string>& args, const env_map& env,
                     std::chrono::milliseconds timeout) {
  auto out = temp_path("postd_out");
  auto err = temp_path("postd_err");
  pid_t pid = spawn(args, env, out, err);
  run_result r{wait_for_exit(pid, timeout), slurp(out), slurp(err)};
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  return r;
}

int free_port() {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::acceptor a{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  return a.local_endpoint().port();
}

server_process::server_process(env_map env, int max_open_files) {
  // PORT=0: the server binds any free port and names it in its start log
  // line, so parallel tests never race for a port. A test may still pin one.
  // With logs above info there is no start line to read: take a free port.
  auto level = env.find("LOG_LEVEL");
  bool quiet = level != env.end() && level->second != "info" &&
               level->second != "debug" && level->second != "trace";
  if (auto it = env.find("PORT"); it != env.end())
    port_ = std::stoi(it->second);
  else if (quiet)
    port_ = free_port();
  env["PORT"] = std::to_string(port_);
  env.emplace("HOST", "127.0.0.1");
  log_path_ = temp_path("postd_server");
  pid_ = spawn({"serve"}, env, log_path_, log_path_ + ".err", max_open_files);
}

int server_process::port(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (port_ == 0) {
    if (auto p = listening_port(slurp(log_path_))) {
      port_ = *p;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(
          "postd did not report its port (its start log line) within " +
          std::to_string(timeout.count()) + " ms:\n" + output());
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return port_;
}

server_process::~server_process() {
  if (pid_ > 0)
    stop(SIGKILL);
  ::unlink(log_path_.c_str());
  ::unlink((log_path_ + ".err").c_str());
}

bool server_process::wait_healthy(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (auto p = listening_port(slurp(log_path_)); port_ == 0 && p)
        port_ = *p;
      if (port_ != 0 && http_call(port_, "GET", "/health").status == 200)
        return true;
    } catch (const std::exception&) {
      // not listening yet
    }
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return false;
}

void server_process::signal(int sig) const {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

int server_process::stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, sig);
  int code = wait_for_exit(pid_, timeout);
  pid_ = -1;
  return code;
}

std::string server_process::output() const {
  return slurp(log_path_) + slurp(log_path_ + ".err");
}

http_result http_call(int port, const std::string& method,
                      const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers,
                      std::chrono::milliseconds timeout,
                      const std::string& source) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  namespace bhttp = beast::http;
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target,
                                         11};
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers)
    req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  // Asynchronous operations, because tcp_stream's deadline only applies to
  // those (a blocking read would wait for a stalled server forever).
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code failure;
  const char* step = "connect";
  if (!source.empty()) {
    // An open socket is connected as it is: bound to `source` first.
    stream.socket().open(net::ip::tcp::v4());
    stream.socket().bind({net::ip::make_address(source), 0});
  }
  stream.expires_after(timeout);
  stream.async_connect(
      net::ip::tcp::endpoint{net::ip::make_address("127.0.0.1"),
                             static_cast<unsigned short>(port)},
      [&](beast::error_code ec) {
        if (ec) {
          failure = ec;
          return;
        }
        step = "write";
        bhttp::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
          if (ec) {
            failure = ec;
            return;
          }
          step = "read";
          bhttp::async_read(
              stream, buffer, res,
              [&](beast::error_code ec, std::size_t) { failure = ec; });
        });
      });
  ioc.run();
  if (failure == beast::error::timeout)
    throw std::runtime_error(
        method + " " + target + " on 127.0.0.1:" + std::to_string(port) +
        ": no response within " + std::to_string(timeout.count()) +
        " ms (stalled at " + step + ")");
  if (failure)
    throw beast::system_error{failure, std::string("http_call ") + step};
  http_result out;
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) {
    std::string name{field.name_string()};
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(field.value());
  }
  beast::error_code ec;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  return out;
}

long long metric_value(int port, const std::string& series) {
  std::string body;
  try {
    body = http_call(port, "GET", "/metrics").body;
  } catch (const std::exception&) {
    return -1;
  }
  auto at = body.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stoll(body.substr(at + series.size() + 2));
}

} // namespace postd::testing
