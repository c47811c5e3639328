#include "app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace postd::app {

namespace {

std::string default_threads() {
  return std::to_string(std::max(1U, std::thread::hardware_concurrency()));
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
constexpr std::int64_t one_hour_ms = 3600000;
constexpr std::int64_t ten_minutes_ms = 600000;
constexpr std::int64_t sixty_four_mib = std::int64_t{64} << 20;

// The kinds of setting. Each returns the whole entry, so a setting's name,
// default, range and help are written once, next to each other.

template <class Field>
setting_info integer_setting(std::string name, std::string default_value,
                             std::int64_t min, std::int64_t max,
                             Field config::*field, std::string help) {
  auto range = std::to_string(min) + ".." + std::to_string(max);
  auto apply = [name, min, max, field](config& c, const std::string& text) {
    c.*field = static_cast<Field>(integer(name, text, min, max));
  };
  return {std::move(name),  std::move(default_value), "",
          std::move(range), std::move(help),          apply};
}

setting_info text_setting(std::string name, std::string default_value,
                          std::string config::*field, bool may_be_empty,
                          std::string help) {
  auto apply = [name, field, may_be_empty](config& c, const std::string& text) {
    c.*field = may_be_empty ? text : non_empty(name, text);
  };
  return {std::move(name), std::move(default_value), "",
          "text",          std::move(help),          apply};
}

setting_info
choice_setting(std::string name, std::string default_value,
               std::initializer_list<const char*> allowed,
               std::function<void(config&, const std::string&)> store,
               std::string help) {
  std::string range;
  for (const char* a : allowed)
    range.append(range.empty() ? "" : "|").append(a);
  auto apply =
      [name, allowed = std::vector<std::string>(allowed.begin(), allowed.end()),
       store = std::move(store)](config& c, const std::string& text) {
        if (std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
          std::string list;
          for (const auto& a : allowed)
            list.append(list.empty() ? "" : ", ").append(a);
          bad(name, "must be one of " + list, text);
        }
        store(c, text);
      };
  return {std::move(name),  std::move(default_value), "",
          std::move(range), std::move(help),          apply};
}

setting_info boolean_setting(std::string name, std::string default_value,
                             bool config::*field, std::string help) {
  auto apply = [name, field](config& c, const std::string& text) {
    c.*field = boolean(name, text);
  };
  return {std::move(name), std::move(default_value), "",
          "true|false",    std::move(help),          apply};
}

std::vector<setting_info> all_settings() {
  auto threads = integer_setting("HTTP_THREADS", default_threads(), 1, 256,
                                 &config::http_threads, "HTTP I/O threads");
  threads.shown_default = "number of cores";
  return {
      integer_setting("PORT", "3000", 0, 65535, &config::port,
                      "HTTP listen port (0: any free port, named in the "
                      "start log line)"),
      text_setting("HOST", "0.0.0.0", &config::host, false,
                   "HTTP listen address"),
      {"DATABASE_URL", "", "", "URL",
       "libpq (or Prisma) URL of PostgreSQL or PgBouncer (required for serve "
       "and migrate)",
       [](config& c, const std::string& text) {
         auto target = parse_database_url(text);
         c.database_url = target.url;
         c.database_schema = target.schema;
       }},
      {"DATABASE_READ_URL", "", "DATABASE_URL", "URL",
       "libpq URL the read routes (a post, the author's posts) query first, "
       "e.g. a streaming replica; a post not found there, or a replica that "
       "fails, is read from DATABASE_URL",
       [](config& c, const std::string& text) {
         if (text.empty())
           return;
         auto target = parse_database_url(text);
         c.database_read_url = target.url;
         c.database_read_schema = target.schema;
       }},
      integer_setting("DB_CONNECT_TIMEOUT_MS", "3000", 1, ten_minutes_ms,
                      &config::db_connect_timeout_ms,
                      "PostgreSQL connect timeout, rounded up to whole "
                      "seconds (libpq 15 waits at least 2 s)"),
      integer_setting("DB_STATEMENT_TIMEOUT_MS", "5000", 1, ten_minutes_ms,
                      &config::db_statement_timeout_ms,
                      "PostgreSQL statement timeout, set per transaction "
                      "(not for migrate)"),
      text_setting("REDIS_HOST", "localhost", &config::redis_host, false,
                   "the queue's Redis host"),
      integer_setting("REDIS_PORT", "6379", 1, 65535, &config::redis_port,
                      "the queue's Redis port"),
      text_setting("REDIS_PASSWORD", "", &config::redis_password, true,
                   "Redis password (AUTH), empty for none"),
      integer_setting("REDIS_TIMEOUT_MS", "3000", 1, ten_minutes_ms,
                      &config::redis_timeout_ms,
                      "Redis connect and command timeout (the writers' "
                      "blocking take excepted)"),
      {"REDIS_SENTINELS", "", "", "host:port,...",
       "Redis Sentinel addresses; when set, the master named "
       "REDIS_SENTINEL_NAME is asked of them (REDIS_HOST and REDIS_PORT "
       "unused)",
       [](config& c, const std::string& text) {
         try {
           c.redis_sentinels = core::parse_endpoints(text);
         } catch (const std::invalid_argument& e) {
           bad("REDIS_SENTINELS", e.what(), text);
         }
       }},
      text_setting("REDIS_SENTINEL_NAME", "mymaster",
                   &config::redis_sentinel_name, false,
                   "the master's name at the sentinels"),
      text_setting("REDIS_SENTINEL_PASSWORD", "",
                   &config::redis_sentinel_password, true,
                   "the sentinels' password (AUTH), empty for none"),
      integer_setting("ACK_REPLICAS", "0", 0, 16, &config::ack_replicas,
                      "replicas that must confirm a create (Redis WAIT) "
                      "before its 202; 0: the master alone"),
      integer_setting("ACK_TIMEOUT_MS", "100", 1, 60000,
                      &config::ack_timeout_ms,
                      "how long a batch of creates waits for ACK_REPLICAS; "
                      "short: 503 with the jobId"),
      integer_setting("RECOVERY_LOG_MS", "30000", 0, 3600000,
                      &config::recovery_log_ms,
                      "how long acknowledged jobs are kept to be checked "
                      "(and added again) on a new Redis master; 0: off"),
      integer_setting("RECOVERY_LOG_MAX_MB", "64", 1, 65536,
                      &config::recovery_log_max_mb,
                      "the recovery log's memory bound; past it the oldest "
                      "jobs are forgotten early (counted in /metrics)"),
      integer_setting("THROTTLE_TTL", "60000", 1, i32_max,
                      &config::throttle_ttl_ms,
                      "rate-limit window in milliseconds"),
      integer_setting("THROTTLE_LIMIT", "100", 1, i32_max,
                      &config::throttle_limit,
                      "requests per window, per client IP and route"),
      choice_setting(
          "THROTTLE_STORE", "memory", {"memory", "redis"},
          [](config& c, const std::string& v) {
            c.throttle =
                v == "redis" ? throttle_store::redis : throttle_store::memory;
          },
          "memory (per instance) or redis (shared by all instances)"),
      boolean_setting("TRUST_PROXY", "false", &config::trust_proxy,
                      "take the client IP from X-Forwarded-For"),
      text_setting("JWT_SECRET", "", &config::jwt_secret, true,
                   "HS256 key for Bearer tokens (required for serve and "
                   "token)"),
      text_setting("QUEUE_NAME", "post-creation", &config::queue_name, false,
                   "Bull queue name"),
      text_setting("QUEUE_PREFIX", "bull", &config::queue_prefix, false,
                   "Bull key prefix"),
      integer_setting("QUEUE_MAX_WAITING", "1000000", 1, std::int64_t{1} << 40,
                      &config::queue_max_waiting,
                      "waiting jobs above which create answers 503"),
      integer_setting("JOB_ATTEMPTS", "3", 1, 100, &config::job_attempts,
                      "attempts per job"),
      integer_setting("JOB_BACKOFF_MS", "1000", 0, one_hour_ms,
                      &config::job_backoff_ms,
                      "exponential backoff base in milliseconds"),
      integer_setting("KEEP_COMPLETED", "1000", 0, i32_max,
                      &config::keep_completed,
                      "completed job ids kept in Redis"),
      integer_setting("KEEP_FAILED", "10000", 0, i32_max, &config::keep_failed,
                      "failed job ids kept in Redis"),
      integer_setting("WRITERS", "4", 0, 256, &config::writers,
                      "writer actors (0: an ingest-only instance)"),
      integer_setting("WRITER_BATCH", "256", 1, 10000, &config::writer_batch,
                      "max jobs one writer persists per transaction"),
      integer_setting("WRITER_NICE", "10", 0, 19, &config::writer_nice,
                      "the writers' threads: SCHED_BATCH at this nice, behind "
                      "the HTTP threads (0: as they are)"),
      integer_setting("WRITER_LINGER_MS", "20", 0, 1000,
                      &config::writer_linger_ms,
                      "after a batch short of WRITER_BATCH, a writer's wait "
                      "before its next take (0: none)"),
      threads,
      integer_setting("MAX_BODY_BYTES", "65536", 64, sixty_four_mib,
                      &config::max_body_bytes, "largest accepted request body"),
      integer_setting("MAX_CONTENT_CHARS", "10000", 1, sixty_four_mib,
                      &config::max_content_chars,
                      "longest accepted post content, in characters"),
      integer_setting("MAX_FILES", "4", 0, 64, &config::max_files,
                      "image files one multipart create may attach (0: "
                      "attachments refused)"),
      integer_setting("MAX_FILE_BYTES", "5242880", 1, sixty_four_mib,
                      &config::max_file_bytes,
                      "largest attached image, in bytes"),
      text_setting("STORAGE_DIR", "data/files", &config::storage_dir, false,
                   "folder of the attached images (relative: to the working "
                   "directory; created if missing)"),
      text_setting("PUBLIC_FILES_URL", "/v1/files/", &config::public_files_url,
                   false,
                   "prefix of the attachments' URLs in fileUrls and images "
                   "(a CDN's, or postd's own /v1/files/)"),
      integer_setting("HTTP_READ_TIMEOUT_MS", "30000", 100, one_hour_ms,
                      &config::http_read_timeout_ms,
                      "a whole request must arrive within this; also the "
                      "keep-alive idle limit"),
      integer_setting("REQUEST_TIMEOUT_MS", "5000", 100, ten_minutes_ms,
                      &config::request_timeout_ms,
                      "a request unanswered this long gets 503 \"request "
                      "timed out\" with Retry-After"),
      integer_setting("MAX_CONNECTIONS", "10000", 1, 1000000,
                      &config::max_connections,
                      "open client connections; past it new ones are closed "
                      "at once"),
      integer_setting("SHUTDOWN_DELAY_MS", "0", 0, one_hour_ms,
                      &config::shutdown_delay_ms,
                      "on SIGTERM, readiness fails this long while requests "
                      "are still served, before the drain (for load "
                      "balancers to stop sending)"),
      integer_setting("SHUTDOWN_GRACE_MS", "10000", 0, one_hour_ms,
                      &config::shutdown_grace_ms, "drain time on SIGTERM"),
      choice_setting(
          "LOG_LEVEL", "info",
          {"trace", "debug", "info", "warn", "error", "off"},
          [](config& c, const std::string& v) { c.log_level = v; },
          "the least severe log line written"),
      choice_setting(
          "LOG_FORMAT", "json", {"json", "text"},
          [](config& c, const std::string& v) { c.log_format = v; },
          "logs on stdout, one JSON object or one text line each"),
      choice_setting(
          "FAULTS", "off", {"off", "on"},
          [](config& c, const std::string& v) { c.faults = v == "on"; },
          "the fault API for testers (/admin/faults: a slow or failing "
          "Redis, PostgreSQL or actor on demand); never in production"),
      text_setting("ADMIN_TOKEN", "", &config::admin_token, true,
                   "the Bearer token of /admin/faults (required with "
                   "FAULTS; 16 characters or more, or postd warns)"),
  };
}

std::vector<setting_info> all_fault_knobs() {
  return {
      integer_setting("POSTD_FAULT_LOCK_MS", "", 100, one_hour_ms,
                      &config::fault_lock_ms,
                      "the writers' job lock and stalled-check interval, "
                      "short so a killed instance's jobs come back soon"),
      integer_setting("POSTD_FAULT_SWEEP_MS", "", 100, one_hour_ms,
                      &config::fault_sweep_ms,
                      "the attachment sweep's interval, and the age past "
                      "which a file no post holds is removed"),
  };
}

} // namespace

const std::vector<setting_info>& fault_knobs() {
  static const std::vector<setting_info> all = all_fault_knobs();
  return all;
}

const std::vector<setting_info>& settings() {
  static const std::vector<setting_info> all = all_settings();
  return all;
}

std::string settings_table() {
  std::size_t name_w = 4;
  std::size_t default_w = 7;
  std::size_t range_w = 5;
  for (const auto& s : settings()) {
    name_w = std::max(name_w, s.name.size());
    default_w = std::max(default_w, s.documented_default().size());
    range_w = std::max(range_w, s.range.size());
  }
  std::string out;
  auto row = [&](const std::string& name, const std::string& def,
                 const std::string& range, const std::string& help) {
    auto pad = [&](const std::string& text, std::size_t width) {
      out.append(text).append(width + 2 - text.size(), ' ');
    };
    pad(name, name_w);
    pad(def, default_w);
    pad(range, range_w);
    out.append(help).append("\n");
  };
  row("NAME", "DEFAULT", "RANGE", "MEANING");
  for (const auto& s : settings())
    row(s.name, s.documented_default(), s.range, s.help);
  return out;
}

config parse_config(const std::map<std::string, std::string>& values) {
  config c;
  for (const auto& s : settings()) {
    auto it = values.find(s.name);
    s.apply(c, it != values.end() ? it->second : s.default_value);
  }
  for (const auto& knob : fault_knobs())
    if (auto it = values.find(knob.name); it != values.end())
      knob.apply(c, it->second);
  // A fault API anyone could call would let anyone stall the server.
  if (c.faults && c.admin_token.empty())
    throw config_error("ADMIN_TOKEN: FAULTS=on needs a token (the Bearer "
                       "token of /admin/faults)");
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
  for (const auto* list : {&settings(), &fault_knobs()})
    for (const auto& s : *list)
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
