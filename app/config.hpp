#pragma once

// All of postd's settings (SPEC §2) in one struct, read from the environment
// and overridden by command-line flags. Parsing is pure, so it is tested
// without touching the process environment.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace postd::app {

enum class throttle_store { memory, redis };

struct config {
  std::string host = "0.0.0.0";
  std::uint16_t port = 3000;
  std::string database_url;    // as libpq takes it (parse_database_url)
  std::string database_schema; // Prisma's ?schema=, empty for the default
  int db_connect_timeout_ms = 3000;
  int db_statement_timeout_ms = 5000;
  std::string redis_host = "localhost";
  int redis_port = 6379;
  std::string redis_password;
  int redis_timeout_ms = 3000;
  std::int64_t throttle_ttl_ms = 60000;
  std::int64_t throttle_limit = 100;
  throttle_store throttle = throttle_store::memory;
  bool trust_proxy = false;
  std::string jwt_secret;
  std::string queue_name = "post-creation";
  std::string queue_prefix = "bull";
  std::int64_t queue_max_waiting = 1000000;
  int job_attempts = 3;
  int job_backoff_ms = 1000;
  std::int64_t keep_completed = 1000;
  std::int64_t keep_failed = 10000;
  int writers = 4;
  int writer_batch = 256;
  int http_threads = 1;
  std::size_t max_body_bytes = 65536;
  std::size_t max_content_chars = 10000;
  int http_read_timeout_ms = 30000;
  int shutdown_grace_ms = 10000;
  std::string log_level = "info";
  std::string log_format = "json";
};

// A setting is missing or invalid; what() is the one line to print,
// e.g. "PORT: must be an integer from 1 to 65535 (got 'abc')".
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct setting_info {
  std::string name;          // environment variable, e.g. "THROTTLE_TTL"
  std::string default_value; // as text; empty when required or empty
  std::string help;
};

// Every setting, in the order example-env lists them.
const std::vector<setting_info>& settings();

// Builds a config from raw values keyed by variable name; unknown names
// are ignored, absent ones take their default. Throws config_error.
config parse_config(const std::map<std::string, std::string>& values);

// Requirements that depend on the command: `serve` needs JWT_SECRET and
// DATABASE_URL, `migrate` needs DATABASE_URL, `token` needs JWT_SECRET.
void require(const config& c, bool database, bool jwt_secret);

// The values of every known setting present in the process environment.
std::map<std::string, std::string> values_from_environment();

// DATABASE_URL split into what libpq accepts and Prisma's schema: the old
// service's Prisma URL may carry Prisma-only parameters (schema, pgbouncer,
// connection_limit, pool_timeout, socket_timeout, statement_cache_size) that
// libpq refuses. They are dropped from url; a schema other than public is
// returned apart (percent-decoded), because PgBouncer refuses the startup
// parameter that would carry it (options=-csearch_path=...): postd sets it
// per transaction instead. Throws config_error for a malformed schema.
struct database_target {
  std::string url;
  std::string schema; // empty: none, or public
};
database_target parse_database_url(const std::string& url);

// The flag name of a setting: THROTTLE_TTL -> --throttle-ttl.
std::string flag_name(const std::string& variable);

} // namespace postd::app
