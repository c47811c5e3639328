#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

namespace {

std::string source_file(const std::string& name) {
  const char* src = std::getenv("POSTD_SOURCE_DIR");
  if (src == nullptr)
    throw std::runtime_error("POSTD_SOURCE_DIR is not set");
  std::ifstream in{std::string(src) + "/" + name};
  if (!in)
    throw std::runtime_error(name + " is missing");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> setting_names() {
  std::vector<std::string> names;
  for (const auto& s : postd::app::settings())
    names.push_back(s.name);
  return names;
}

const postd::app::setting_info& setting(const std::string& name) {
  for (const auto& s : postd::app::settings())
    if (s.name == name)
      return s;
  throw std::runtime_error("no setting " + name);
}

} // namespace

// example-env lists every setting, in the binary's order, with its default:
// `NAME=default`, or `# NAME=example` where the default is computed (the
// number of cores); a setting without a default may show an example value.
TEST(Config, ExampleEnvAgreesWithTheSettings) {
  static const std::regex assignment{R"(^(# ?)?([A-Z][A-Z0-9_]*)=(.*)$)"};
  std::vector<std::string> listed;
  std::istringstream in{source_file("example-env")};
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, assignment))
      continue;
    const std::string name = m[2];
    listed.push_back(name);
    const auto& s = setting(name);
    bool commented = m[1].matched;
    EXPECT_EQ(commented, !s.shown_default.empty()) << line;
    if (!commented && !s.default_value.empty()) {
      EXPECT_EQ(m[3].str(), s.default_value) << line;
    }
  }
  EXPECT_EQ(listed, setting_names());
}

// The README's settings table names every setting, in the binary's order,
// with its default ("—" or "empty" for none; notes in parentheses aside).
TEST(Config, ReadmeTableAgreesWithTheSettings) {
  auto readme = source_file("README.md");
  auto table = readme.find("| variable | default | meaning |");
  ASSERT_NE(table, std::string::npos) << "no settings table in README.md";
  std::istringstream in{readme.substr(table)};
  std::string line;
  std::getline(in, line); // header
  std::getline(in, line); // |---|
  static const std::regex notes{R"( *\([^)]*\))"};
  std::vector<std::string> listed;
  while (std::getline(in, line) && line.rfind("| ", 0) == 0) {
    // | `NAME`, `OTHER` | default, other default | meaning |
    auto first = line.find(" | ");
    auto second = line.find(" | ", first + 3);
    ASSERT_NE(second, std::string::npos) << line;
    auto names_cell = line.substr(2, first - 2);
    auto defaults_cell = line.substr(first + 3, second - first - 3);
    auto split = [](const std::string& text) {
      std::vector<std::string> parts;
      std::size_t from = 0;
      for (auto at = text.find(", "); from <= text.size();
           at = text.find(", ", from)) {
        if (at == std::string::npos)
          at = text.size();
        parts.push_back(text.substr(from, at - from));
        from = at + 2;
      }
      return parts;
    };
    auto names = split(names_cell);
    auto defaults = split(std::regex_replace(defaults_cell, notes, ""));
    ASSERT_EQ(names.size(), defaults.size()) << line;
    for (std::size_t i = 0; i < names.size(); ++i) {
      ASSERT_GE(names[i].size(), 2u) << line;
      auto name = names[i].substr(1, names[i].size() - 2); // `NAME`
      listed.push_back(name);
      auto shown =
          defaults[i] == "—" || defaults[i] == "empty" ? "" : defaults[i];
      EXPECT_EQ(shown, setting(name).documented_default()) << line;
    }
  }
  EXPECT_EQ(listed, setting_names());
}

TEST(Config, HelpEnvShowsEverySettingOnItsOwnLine) {
  std::istringstream table{postd::app::settings_table()};
  std::string line;
  std::getline(table, line);
  EXPECT_EQ(line.rfind("NAME ", 0), 0u) << line;
  for (const auto& s : postd::app::settings()) {
    ASSERT_TRUE(std::getline(table, line)) << s.name;
    EXPECT_EQ(line.rfind(s.name + " ", 0), 0u) << line;
    for (const auto& part : {s.documented_default(), s.range, s.help})
      EXPECT_NE(line.find(part), std::string::npos) << s.name << ": " << part;
  }
  EXPECT_FALSE(std::getline(table, line)) << line;
}

// Fault knobs are off unless set, checked like settings, and never listed
// as settings.
TEST(Config, FaultKnobsAreCheckedAndNotSettings) {
  auto c = parse_config({});
  EXPECT_EQ(c.fault_lock_ms, 0);
  c = parse_config({{"POSTD_FAULT_LOCK_MS", "2000"}});
  EXPECT_EQ(c.fault_lock_ms, 2000);
  for (const auto& [name, bad] :
       std::vector<std::pair<std::string, std::string>>{
           {"POSTD_FAULT_LOCK_MS", "99"}, {"POSTD_FAULT_LOCK_MS", "2s"}}) {
    try {
      parse_config({{name, bad}});
      ADD_FAILURE() << name << "=" << bad << " accepted";
    } catch (const config_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(name + ": ", 0), 0u) << e.what();
    }
  }
  for (const auto& knob : postd::app::fault_knobs()) {
    EXPECT_EQ(knob.name.rfind("POSTD_FAULT_", 0), 0u) << knob.name;
    for (const auto& s : postd::app::settings())
      EXPECT_NE(s.name, knob.name);
    EXPECT_EQ(postd::app::settings_table().find(knob.name), std::string::npos);
  }
  // The crash rates they once had are the fault API's now.
  EXPECT_TRUE(std::none_of(
      postd::app::fault_knobs().begin(), postd::app::fault_knobs().end(),
      [](const auto& k) { return k.name.find("RATE") != std::string::npos; }));
}

// The fault API is off unless FAULTS=on, which needs an ADMIN_TOKEN (a
// missing one stops postd at start; a short one is taken, with a warning).
TEST(Config, FaultsOnNeedAnAdminToken) {
  EXPECT_FALSE(parse_config({}).faults);
  auto c =
      parse_config({{"FAULTS", "on"}, {"ADMIN_TOKEN", "0123456789abcdef"}});
  EXPECT_TRUE(c.faults);
  EXPECT_EQ(c.admin_token, "0123456789abcdef");
  EXPECT_FALSE(parse_config({{"FAULTS", "off"}, {"ADMIN_TOKEN", "x"}}).faults);
  EXPECT_EQ(
      parse_config({{"FAULTS", "on"}, {"ADMIN_TOKEN", "short"}}).admin_token,
      "short"); // taken; serve warns
  try {
    parse_config({{"FAULTS", "on"}, {"ADMIN_TOKEN", ""}});
    ADD_FAILURE() << "FAULTS=on accepted without a token";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("ADMIN_TOKEN: ", 0), 0u) << e.what();
  }
  EXPECT_THROW(parse_config({{"FAULTS", "yes"}}), config_error);
}

TEST(Config, PortZeroMeansAnyFreePort) {
  EXPECT_EQ(parse_config({{"PORT", "0"}}).port, 0);
}

// PgBouncer refuses the startup parameter that would carry a schema
// (options=-csearch_path=...): the schema comes apart from the URL.
TEST(Config, PrismaUrlsBecomeLibpqUrlsAndASchema) {
  using postd::app::parse_database_url;
  auto parsed = [](const std::string& url) {
    auto t = parse_database_url(url);
    return std::pair{t.url, t.schema};
  };
  struct example {
    std::string url, libpq_url, schema;
  };
  for (const auto& [url, libpq_url, schema] : std::vector<example>{
           {"postgresql://u:p@h:5432/db", "postgresql://u:p@h:5432/db", ""},
           {"postgresql://u@h:6432/db?schema=public&pgbouncer=true",
            "postgresql://u@h:6432/db", ""},
           {"postgresql://u@h/db?connection_limit=5&sslmode=disable",
            "postgresql://u@h/db?sslmode=disable", ""},
           {"postgresql://u@h/db?schema=app", "postgresql://u@h/db", "app"},
           {"postgresql://u@h/db?sslmode=disable&schema=My%20App%22",
            "postgresql://u@h/db?sslmode=disable", "My App\""},
           {"postgresql://u@h/db?schema", "postgresql://u@h/db", ""}})
    EXPECT_EQ(parsed(url), std::pair(libpq_url, schema)) << url;

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
