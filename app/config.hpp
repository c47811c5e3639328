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

#include "core/endpoint.hpp"

namespace postd::app {

enum class throttle_store { memory, redis };

// ADMIN_TOKEN: shorter ones are taken with a warning at start (a guessable
// token lets anyone stall the server through the fault API).
inline constexpr std::size_t recommended_admin_token = 16;

// The values postd runs with. Defaults, ranges and help live in one place,
// settings() (config.cpp): a config comes from parse_config, never from
// these zero-initialised members.
struct config {
  std::string host;
  std::uint16_t port = 0;      // 0: any free port (the start log line names it)
  std::string database_url;    // as libpq takes it (parse_database_url)
  std::string database_schema; // Prisma's ?schema=, empty for the default
  // DATABASE_READ_URL, parsed the same way; empty: read from database_url.
  std::string database_read_url;
  std::string database_read_schema;
  int db_connect_timeout_ms = 0;
  int db_statement_timeout_ms = 0;
  std::string redis_host;
  int redis_port = 0;
  std::string redis_password;
  int redis_timeout_ms = 0;
  // Empty: REDIS_HOST/REDIS_PORT; else the master is asked of them.
  std::vector<core::endpoint> redis_sentinels;
  std::string redis_sentinel_name;
  std::string redis_sentinel_password;
  int ack_replicas = 0;
  int ack_timeout_ms = 0;
  int recovery_log_ms = 0; // 0: no recovery log
  int recovery_log_max_mb = 0;
  std::int64_t throttle_ttl_ms = 0;
  std::int64_t throttle_limit = 0;
  throttle_store throttle = throttle_store::memory;
  bool trust_proxy = false;
  bool faults = false; // FAULTS: the fault API (/admin/faults)
  std::string jwt_secret;
  std::string queue_name;
  std::string queue_prefix;
  std::int64_t queue_max_waiting = 0;
  int job_attempts = 0;
  int job_backoff_ms = 0;
  std::int64_t keep_completed = 0;
  std::int64_t keep_failed = 0;
  int writers = 0;
  int writer_batch = 0;
  int writer_nice = 0;
  int writer_linger_ms = 0;
  int http_threads = 0;
  std::size_t max_body_bytes = 0;
  std::size_t max_content_chars = 0;
  int http_read_timeout_ms = 0;
  // Attachments (multipart creates) and GET /v1/files/:name.
  int max_files = 0;
  std::size_t max_file_bytes = 0;
  std::string storage_dir;
  std::string public_files_url;
  int request_timeout_ms = 0;
  int max_connections = 0;
  int shutdown_delay_ms = 0;
  int shutdown_grace_ms = 0;
  std::string log_level;
  std::string log_format;
  std::string admin_token; // FAULTS' (the fault API, /admin/faults)
  // The test-only knob POSTD_FAULT_LOCK_MS (fault_knobs()); zero: off.
  int fault_lock_ms = 0;
  // POSTD_FAULT_SWEEP_MS: the attachment sweep's interval and the age at
  // which an unheld file goes, short for tests; zero: 10 min and 1 h.
  int fault_sweep_ms = 0;
};

// A setting is missing or invalid; what() is the one line to print,
// e.g. "PORT: must be an integer from 1 to 65535 (got 'abc')".
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// One setting, spelled once: the environment variable (and its flag), its
// default, the values it takes, its help, and how a value lands in a config.
// `postd --help-env`, the flags' help, parse_config and the tests that hold
// example-env and the README's table to it all read this list.
struct setting_info {
  std::string name;          // environment variable, e.g. "THROTTLE_TTL"
  std::string default_value; // as text; empty when required or empty
  std::string shown_default; // how the docs show a computed default, else ""
  std::string range;         // e.g. "1..65535", "memory|redis", "text"
  std::string help;
  // Parses `value` (throws config_error naming the variable) into `c`.
  std::function<void(config& c, const std::string& value)> apply;

  // The default as README and --help-env show it.
  const std::string& documented_default() const {
    return shown_default.empty() ? default_value : shown_default;
  }
};

// Every setting, in the order example-env lists them.
const std::vector<setting_info>& settings();

// Knobs for fault-injection tests, not settings: POSTD_FAULT_* variables,
// absent from --help-env, example-env and the README's table, off unless
// set. postd names each one set in a warning line at start; a bad value is
// a config_error like a setting's.
const std::vector<setting_info>& fault_knobs();

// `postd --help-env`: one line per setting (name, default, range, help).
std::string settings_table();

// Builds a config from raw values keyed by variable name; unknown names
// are ignored, absent settings take their default, absent knobs stay off.
// Throws config_error.
config parse_config(const std::map<std::string, std::string>& values);

// Requirements that depend on the command: `serve` needs JWT_SECRET and
// DATABASE_URL, `migrate` needs DATABASE_URL, `token` needs JWT_SECRET.
void require(const config& c, bool database, bool jwt_secret);

// The values of every setting and fault knob present in the process
// environment.
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
