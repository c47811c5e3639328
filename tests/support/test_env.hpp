#pragma once

// The services deploy/test.sh starts for the integration tests, described by
// environment variables:
//   POSTD_TEST_REDIS_HOST, POSTD_TEST_REDIS_PORT   a private Redis
//   POSTD_TEST_PG_HOST, POSTD_TEST_PG_PORT,
//   POSTD_TEST_PG_USER                              a private PostgreSQL 15
//   POSTD_TEST_PGBOUNCER_PORT                       PgBouncer 1.18, transaction
//                                                   mode, any database name
// A missing variable fails the test (it never skips): a run without services
// must not pass.

#include <stdexcept>
#include <string>
#include <string_view>

#include "persistence/redis_client.hpp"

namespace postd::testing {

// The variable's value; throws std::runtime_error naming it when unset.
std::string require_env(const char* name);

persistence::redis_options test_redis();

// A name unique to this process and call, e.g. "it_1234_7_ab12".
std::string unique_name(std::string_view stem);

// A fresh, empty database created for one test and dropped afterwards.
class scratch_database {
public:
  scratch_database();
  ~scratch_database();
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;

  const std::string& name() const { return name_; }
  // libpq URL straight to PostgreSQL.
  std::string direct_url() const;
  // libpq URL through PgBouncer (transaction mode).
  std::string pgbouncer_url() const;

private:
  std::string name_;
};

// Runs `script` in bash with deploy/lib/common.sh sourced (POSTD_TEST_LIB),
// e.g. "postd_stop_redis DIR"; returns its exit status.
int shell(const std::string& script);

// Runs a service function; throws (failing the test) when it fails.
inline void must(const std::string& script) {
  if (shell(script) != 0)
    throw std::runtime_error("failed: " + script);
}

// A fresh directory name for a service of the test's own.
inline std::string service_dir(const std::string& stem) {
  return require_env("POSTD_TEST_SERVICES_DIR") + "/" + unique_name(stem);
}

// libpq URL of the server's maintenance database ("postgres"), direct.
std::string admin_url();

} // namespace postd::testing
