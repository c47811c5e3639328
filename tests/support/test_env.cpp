#include "support/test_env.hpp"

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include <pqxx/pqxx>
#include <unistd.h>

namespace postd::testing {

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0')
    throw std::runtime_error(std::string(name) +
                             " is not set: run the tests with deploy/test.sh");
  return v;
}

persistence::redis_options test_redis() {
  persistence::redis_options opts;
  opts.host = require_env("POSTD_TEST_REDIS_HOST");
  opts.port = std::stoi(require_env("POSTD_TEST_REDIS_PORT"));
  return opts;
}

std::string unique_name(std::string_view stem) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}() % 100000;
  return std::string(stem) + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + "_" + std::to_string(salt);
}

namespace {

std::string url_for(const std::string& port_var, const std::string& db) {
  return "postgresql://" + require_env("POSTD_TEST_PG_USER") + "@" +
         require_env("POSTD_TEST_PG_HOST") + ":" +
         require_env(port_var.c_str()) + "/" + db;
}

} // namespace

std::string admin_url() {
  return url_for("POSTD_TEST_PG_PORT", "postgres");
}

scratch_database::scratch_database() : name_(unique_name("postd_it")) {
  pqxx::connection conn{admin_url()};
  pqxx::nontransaction tx{conn};
  tx.exec("CREATE DATABASE " + tx.quote_name(name_));
}

scratch_database::~scratch_database() {
  try {
    pqxx::connection conn{admin_url()};
    pqxx::nontransaction tx{conn};
    // PgBouncer may still hold pooled server connections to it.
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) +
            " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server is torn down with the test run; a leftover is harmless.
  }
}

std::string scratch_database::direct_url() const {
  return url_for("POSTD_TEST_PG_PORT", name_);
}

std::string scratch_database::pgbouncer_url() const {
  return url_for("POSTD_TEST_PGBOUNCER_PORT", name_);
}

int shell(const std::string& script) {
  std::string cmd = "bash -c 'source \"$POSTD_TEST_LIB\" && " + script + "'";
  return std::system(cmd.c_str());
}

} // namespace postd::testing
