#include "app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace postd::app {

namespace {

std::string default_threads() {
  return std::to_string(std::max(1u, std::thread::hardware_concurrency()));
}

[[noreturn]] void bad(const std::string& name, const std::string& why,
                      const std::string& got) {
  throw config_error(name + ": " + why + " (got '" + got + "')");
}

std::int64_t integer(const std::string& name, const std::string& text,
                     std::int64_t min, std::int64_t max) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end || v < min || v > max)
    bad(name,
        "must be an integer from " + std::to_string(min) + " to " +
            std::to_string(max),
        text);
  return v;
}

bool boolean(const std::string& name, const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (t == "true" || t == "1" || t == "yes")
    return true;
  if (t == "false" || t == "0" || t == "no")
    return false;
  bad(name, "must be true or false", text);
}

std::string one_of(const std::string& name, const std::string& text,
                   std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (text == a)
      return text;
  std::string list;
  for (const char* a : allowed)
    list += (list.empty() ? "" : ", ") + std::string(a);
  bad(name, "must be one of " + list, text);
}

std::string non_empty(const std::string& name, const std::string& text) {
  if (text.empty())
    bad(name, "must not be empty", text);
  return text;
}

// A URL parameter's value as libpq and Prisma read it (%XX escapes). A NUL
// could not reach PostgreSQL intact, so it is refused with the rest.
std::string percent_decoded(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned byte = 0; // unsigned: from_chars takes no sign then
    const char* digits = text.data() + i + 1;
    auto [end, ec] = std::from_chars(
        digits, digits + std::min<std::size_t>(2, text.size() - i - 1), byte,
        16);
    if (ec != std::errc{} || end != digits + 2 || byte == 0)
      bad("DATABASE_URL", "its schema parameter is not valid percent-encoding",
          text);
    out += static_cast<char>(byte);
    i += 2;
  }
  return out;
}

constexpr std::int64_t i32_max = 2147483647;

} // namespace

const std::vector<setting_info>& settings() {
  static const std::vector<setting_info> all = {
      {"PORT", "3000", "HTTP listen port"},
      {"HOST", "0.0.0.0", "HTTP listen address"},
      {"DATABASE_URL", "", "libpq URL of PostgreSQL or PgBouncer (required)"},
      {"DB_CONNECT_TIMEOUT_MS", "3000",
       "PostgreSQL connect timeout, rounded up to whole seconds (libpq 15 "
       "waits at least 2 s)"},
      {"DB_STATEMENT_TIMEOUT_MS", "5000",
       "PostgreSQL statement timeout, set per transaction (not for migrate)"},
      {"REDIS_HOST", "localhost", "the queue's Redis host"},
      {"REDIS_PORT", "6379", "the queue's Redis port"},
      {"REDIS_PASSWORD", "", "Redis password (AUTH), empty for none"},
      {"REDIS_TIMEOUT_MS", "3000",
       "Redis connect and command timeout (the writers' blocking take "
       "excepted)"},
      {"THROTTLE_TTL", "60000", "rate-limit window in milliseconds"},
      {"THROTTLE_LIMIT", "100", "requests per window, per client IP and route"},
      {"THROTTLE_STORE", "memory", "memory (per instance) or redis (shared)"},
      {"TRUST_PROXY", "false", "take the client IP from X-Forwarded-For"},
      {"JWT_SECRET", "", "HS256 key for Bearer tokens (required for serve)"},
      {"QUEUE_NAME", "post-creation", "Bull queue name"},
      {"QUEUE_PREFIX", "bull", "Bull key prefix"},
      {"QUEUE_MAX_WAITING", "1000000",
       "waiting jobs above which create answers 503"},
      {"JOB_ATTEMPTS", "3", "attempts per job"},
      {"JOB_BACKOFF_MS", "1000", "exponential backoff base in milliseconds"},
      {"KEEP_COMPLETED", "1000", "completed job ids kept in Redis"},
      {"KEEP_FAILED", "10000", "failed job ids kept in Redis"},
      {"WRITERS", "4", "writer actors (0: an ingest-only instance)"},
      {"WRITER_BATCH", "256", "max jobs one writer persists per transaction"},
      {"HTTP_THREADS", default_threads(), "HTTP I/O threads"},
      {"MAX_BODY_BYTES", "65536", "largest accepted request body"},
      {"MAX_CONTENT_CHARS", "10000",
       "longest accepted post content, in characters"},
      {"HTTP_READ_TIMEOUT_MS", "30000",
       "a whole request must arrive within this; also the keep-alive idle "
       "limit"},
      {"SHUTDOWN_GRACE_MS", "10000", "drain time on SIGTERM"},
      {"LOG_LEVEL", "info", "trace, debug, info, warn, error or off"},
      {"LOG_FORMAT", "json", "json or text"},
  };
  return all;
}

config parse_config(const std::map<std::string, std::string>& values) {
  auto get = [&](const std::string& name) {
    if (auto it = values.find(name); it != values.end())
      return it->second;
    for (const auto& s : settings())
      if (s.name == name)
        return s.default_value;
    return std::string{};
  };
  config c;
  c.port = static_cast<std::uint16_t>(integer("PORT", get("PORT"), 1, 65535));
  c.host = non_empty("HOST", get("HOST"));
  auto database = parse_database_url(get("DATABASE_URL"));
  c.database_url = database.url;
  c.database_schema = database.schema;
  c.db_connect_timeout_ms = static_cast<int>(integer(
      "DB_CONNECT_TIMEOUT_MS", get("DB_CONNECT_TIMEOUT_MS"), 1, 600000));
  c.db_statement_timeout_ms = static_cast<int>(integer(
      "DB_STATEMENT_TIMEOUT_MS", get("DB_STATEMENT_TIMEOUT_MS"), 1, 600000));
  c.redis_host = non_empty("REDIS_HOST", get("REDIS_HOST"));
  c.redis_port =
      static_cast<int>(integer("REDIS_PORT", get("REDIS_PORT"), 1, 65535));
  c.redis_password = get("REDIS_PASSWORD");
  c.redis_timeout_ms = static_cast<int>(
      integer("REDIS_TIMEOUT_MS", get("REDIS_TIMEOUT_MS"), 1, 600000));
  c.throttle_ttl_ms = integer("THROTTLE_TTL", get("THROTTLE_TTL"), 1, i32_max);
  c.throttle_limit =
      integer("THROTTLE_LIMIT", get("THROTTLE_LIMIT"), 1, i32_max);
  c.throttle = one_of("THROTTLE_STORE", get("THROTTLE_STORE"),
                      {"memory", "redis"}) == "redis"
                   ? throttle_store::redis
                   : throttle_store::memory;
  c.trust_proxy = boolean("TRUST_PROXY", get("TRUST_PROXY"));
  c.jwt_secret = get("JWT_SECRET");
  c.queue_name = non_empty("QUEUE_NAME", get("QUEUE_NAME"));
  c.queue_prefix = non_empty("QUEUE_PREFIX", get("QUEUE_PREFIX"));
  c.queue_max_waiting = integer("QUEUE_MAX_WAITING", get("QUEUE_MAX_WAITING"),
                                1, std::int64_t{1} << 40);
  c.job_attempts =
      static_cast<int>(integer("JOB_ATTEMPTS", get("JOB_ATTEMPTS"), 1, 100));
  c.job_backoff_ms = static_cast<int>(
      integer("JOB_BACKOFF_MS", get("JOB_BACKOFF_MS"), 0, 3600000));
  c.keep_completed =
      integer("KEEP_COMPLETED", get("KEEP_COMPLETED"), 0, i32_max);
  c.keep_failed = integer("KEEP_FAILED", get("KEEP_FAILED"), 0, i32_max);
  c.writers = static_cast<int>(integer("WRITERS", get("WRITERS"), 0, 256));
  c.writer_batch =
      static_cast<int>(integer("WRITER_BATCH", get("WRITER_BATCH"), 1, 10000));
  c.http_threads =
      static_cast<int>(integer("HTTP_THREADS", get("HTTP_THREADS"), 1, 256));
  c.max_body_bytes = static_cast<std::size_t>(
      integer("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), 64, 64 * 1024 * 1024));
  c.max_content_chars = static_cast<std::size_t>(integer(
      "MAX_CONTENT_CHARS", get("MAX_CONTENT_CHARS"), 1, 64 * 1024 * 1024));
  c.http_read_timeout_ms = static_cast<int>(integer(
      "HTTP_READ_TIMEOUT_MS", get("HTTP_READ_TIMEOUT_MS"), 100, 3600000));
  c.shutdown_grace_ms = static_cast<int>(
      integer("SHUTDOWN_GRACE_MS", get("SHUTDOWN_GRACE_MS"), 0, 3600000));
  c.log_level = one_of("LOG_LEVEL", get("LOG_LEVEL"),
                       {"trace", "debug", "info", "warn", "error", "off"});
  c.log_format = one_of("LOG_FORMAT", get("LOG_FORMAT"), {"json", "text"});
  return c;
}

database_target parse_database_url(const std::string& url) {
  auto q = url.find('?');
  if (q == std::string::npos)
    return {url, ""};
  static const std::initializer_list<std::string_view> prisma_only = {
      "schema",       "pgbouncer",      "connection_limit",
      "pool_timeout", "socket_timeout", "statement_cache_size"};
  std::string kept;
  std::string schema;
  std::size_t pos = q + 1;
  while (pos <= url.size()) {
    auto amp = url.find('&', pos);
    if (amp == std::string::npos)
      amp = url.size();
    auto param = url.substr(pos, amp - pos);
    auto name = param.substr(0, param.find('='));
    if (name == "schema" && name.size() < param.size())
      schema = percent_decoded(param.substr(name.size() + 1));
    bool drop = param.empty() ||
                std::find(prisma_only.begin(), prisma_only.end(), name) !=
                    prisma_only.end();
    if (!drop)
      kept += (kept.empty() ? "" : "&") + param;
    pos = amp + 1;
  }
  if (schema == "public")
    schema.clear(); // the default: nothing to set
  return {url.substr(0, q) + (kept.empty() ? "" : "?" + kept), schema};
}

void require(const config& c, bool database, bool jwt_secret) {
  if (database && c.database_url.empty())
    throw config_error("DATABASE_URL: required (a libpq URL, e.g. "
                       "postgresql://user@127.0.0.1:5432/postd)");
  if (jwt_secret && c.jwt_secret.empty())
    throw config_error(
        "JWT_SECRET: required (the HS256 key for Bearer tokens)");
}

std::map<std::string, std::string> values_from_environment() {
  std::map<std::string, std::string> values;
  for (const auto& s : settings())
    if (const char* v = std::getenv(s.name.c_str()))
      values[s.name] = v;
  return values;
}

std::string flag_name(const std::string& variable) {
  std::string flag = "--";
  for (char ch : variable)
    flag +=
        ch == '_'
            ? '-'
            : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return flag;
}

} // namespace postd::app
