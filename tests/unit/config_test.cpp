#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "app/config.hpp"

using postd::app::config_error;
using postd::app::parse_config;

TEST(Config, DefaultsMatchTheSpec) {
  auto c = parse_config({});
  EXPECT_EQ(c.port, 3000);
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.redis_host, "localhost");
  EXPECT_EQ(c.redis_port, 6379);
  EXPECT_EQ(c.throttle_ttl_ms, 60000);
  EXPECT_EQ(c.throttle_limit, 100);
  EXPECT_EQ(c.throttle, postd::app::throttle_store::memory);
  EXPECT_FALSE(c.trust_proxy);
  EXPECT_EQ(c.queue_name, "post-creation");
  EXPECT_EQ(c.queue_prefix, "bull");
  EXPECT_EQ(c.queue_max_waiting, 1000000);
  EXPECT_EQ(c.job_attempts, 3);
  EXPECT_EQ(c.job_backoff_ms, 1000);
  EXPECT_EQ(c.keep_completed, 1000);
  EXPECT_EQ(c.keep_failed, 10000);
  EXPECT_EQ(c.writers, 4);
  EXPECT_EQ(c.writer_batch, 256);
  EXPECT_GE(c.http_threads, 1);
  EXPECT_EQ(c.max_body_bytes, 65536u);
  EXPECT_EQ(c.max_content_chars, 10000u);
  EXPECT_EQ(c.http_read_timeout_ms, 30000);
  EXPECT_EQ(c.shutdown_grace_ms, 10000);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "json");
}

TEST(Config, ReadsValues) {
  auto c = parse_config({{"PORT", "8080"},
                         {"TRUST_PROXY", "true"},
                         {"THROTTLE_STORE", "redis"},
                         {"WRITERS", "2"},
                         {"HTTP_READ_TIMEOUT_MS", "500"}});
  EXPECT_EQ(c.port, 8080);
  EXPECT_TRUE(c.trust_proxy);
  EXPECT_EQ(c.throttle, postd::app::throttle_store::redis);
  EXPECT_EQ(c.writers, 2);
  EXPECT_EQ(c.http_read_timeout_ms, 500);
}

TEST(Config, InvalidValuesNameTheVariable) {
  auto message = [](std::map<std::string, std::string> v) {
    try {
      parse_config(v);
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({{"PORT", "abc"}}).rfind("PORT: ", 0), 0u);
  EXPECT_EQ(message({{"PORT", "70000"}}).rfind("PORT: ", 0), 0u);
  EXPECT_EQ(message({{"PORT", "80x"}}).rfind("PORT: ", 0), 0u);
  EXPECT_EQ(message({{"WRITERS", "-1"}}).rfind("WRITERS: ", 0), 0u);
  EXPECT_EQ(message({{"WRITERS", "257"}}).rfind("WRITERS: ", 0), 0u);
  EXPECT_EQ(message({{"TRUST_PROXY", "maybe"}}).rfind("TRUST_PROXY: ", 0), 0u);
  EXPECT_EQ(message({{"THROTTLE_STORE", "disk"}}).rfind("THROTTLE_STORE: ", 0),
            0u);
  EXPECT_EQ(message({{"LOG_FORMAT", "xml"}}).rfind("LOG_FORMAT: ", 0), 0u);
  for (const auto* bad : {"abc", "50", "99", "3600001", ""}) {
    EXPECT_EQ(message({{"HTTP_READ_TIMEOUT_MS", bad}})
                  .rfind("HTTP_READ_TIMEOUT_MS: ", 0),
              0u)
        << bad;
  }
  EXPECT_EQ(message({{"HTTP_READ_TIMEOUT_MS", "100"}}), "no error");
  EXPECT_EQ(message({{"HTTP_READ_TIMEOUT_MS", "3600000"}}), "no error");
  EXPECT_NE(message({{"PORT", "abc"}}).find("'abc'"), std::string::npos);
}

TEST(Config, RequirementsDependOnTheCommand) {
  auto c = parse_config({});
  EXPECT_THROW(postd::app::require(c, true, false), config_error);
  EXPECT_THROW(postd::app::require(c, false, true), config_error);
  EXPECT_NO_THROW(postd::app::require(c, false, false));
  c.database_url = "postgresql://x@127.0.0.1/db";
  c.jwt_secret = "s";
  EXPECT_NO_THROW(postd::app::require(c, true, true));
}

TEST(Config, FlagNames) {
  EXPECT_EQ(postd::app::flag_name("THROTTLE_TTL"), "--throttle-ttl");
  EXPECT_EQ(postd::app::flag_name("PORT"), "--port");
}

// example-env must list every setting with its real default.
TEST(Config, ExampleEnvListsEverySetting) {
  const char* src = std::getenv("POSTD_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream in{std::string(src) + "/example-env"};
  ASSERT_TRUE(in) << "example-env missing";
  std::map<std::string, std::string> listed;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    auto eq = line.find('=');
    listed[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (const auto& s : postd::app::settings()) {
    ASSERT_TRUE(listed.count(s.name)) << s.name << " missing from example-env";
    if (s.name != "HTTP_THREADS" && s.name != "DATABASE_URL") {
      EXPECT_EQ(listed[s.name], s.default_value) << s.name;
    }
  }
  EXPECT_EQ(listed.size(), postd::app::settings().size());
}

// PgBouncer refuses the startup parameter that would carry a schema
// (options=-csearch_path=...): the schema comes apart from the URL.
TEST(Config, PrismaUrlsBecomeLibpqUrlsAndASchema) {
  using postd::app::parse_database_url;
  auto parsed = [](const std::string& url) {
    auto t = parse_database_url(url);
    return std::pair{t.url, t.schema};
  };
  using result = std::pair<std::string, std::string>;
  EXPECT_EQ(parsed("postgresql://u:p@h:5432/db"),
            result("postgresql://u:p@h:5432/db", ""));
  EXPECT_EQ(parsed("postgresql://u@h:6432/db?schema=public&pgbouncer=true"),
            result("postgresql://u@h:6432/db", ""));
  EXPECT_EQ(parsed("postgresql://u@h/db?connection_limit=5&sslmode=disable"),
            result("postgresql://u@h/db?sslmode=disable", ""));
  EXPECT_EQ(parsed("postgresql://u@h/db?schema=app"),
            result("postgresql://u@h/db", "app"));
  EXPECT_EQ(parsed("postgresql://u@h/db?sslmode=disable&schema=My%20App%22"),
            result("postgresql://u@h/db?sslmode=disable", "My App\""));
  EXPECT_EQ(parsed("postgresql://u@h/db?schema"),
            result("postgresql://u@h/db", ""));

  auto c = parse_config(
      {{"DATABASE_URL", "postgresql://h/db?schema=tenant1&pgbouncer=true"}});
  EXPECT_EQ(c.database_url, "postgresql://h/db");
  EXPECT_EQ(c.database_schema, "tenant1");
  c = parse_config({{"DATABASE_URL", "postgresql://h/db?schema=public"}});
  EXPECT_EQ(c.database_url, "postgresql://h/db");
  EXPECT_EQ(c.database_schema, "");

  for (const auto* bad : {"%", "a%2", "%zz", "%00", "%-1"}) {
    try {
      parse_config({{"DATABASE_URL",
                     std::string("postgresql://u:secret@h/db?schema=") + bad}});
      ADD_FAILURE() << bad << " accepted";
    } catch (const config_error& e) {
      std::string what = e.what();
      EXPECT_EQ(what.rfind("DATABASE_URL: ", 0), 0u) << what;
      EXPECT_EQ(what.find("secret"), std::string::npos) << what;
    }
  }
}

TEST(Config, DatabaseTimeouts) {
  auto c = parse_config({});
  EXPECT_EQ(c.db_connect_timeout_ms, 3000);
  EXPECT_EQ(c.db_statement_timeout_ms, 5000);
  c = parse_config(
      {{"DB_CONNECT_TIMEOUT_MS", "1"}, {"DB_STATEMENT_TIMEOUT_MS", "600000"}});
  EXPECT_EQ(c.db_connect_timeout_ms, 1);
  EXPECT_EQ(c.db_statement_timeout_ms, 600000);
  for (const auto* name : {"DB_CONNECT_TIMEOUT_MS", "DB_STATEMENT_TIMEOUT_MS"})
    for (const auto* bad : {"0", "600001", "-5", "1s", ""})
      EXPECT_THROW(parse_config({{name, bad}}), config_error)
          << name << "=" << bad;
}
