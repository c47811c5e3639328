#pragma once

// PostgreSQL processes of a test's own, started and stopped with the
// functions of deploy/lib/common.sh under POSTD_TEST_SERVICES_DIR (never the
// shared one): a server with its PgBouncer (to stop, hang, kill), and a
// streaming standby of one (to promote).

#include <string>

#include <pqxx/pqxx>

#include "support/eventually.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

namespace postd::testing {

// A PostgreSQL of the test's own (initdb'd on start, fsync off) with a
// PgBouncer in front, like production, and one database migrated by postd.
class private_postgres {
public:
  // `crash_safe`: a COMMIT waits for its WAL to reach the OS
  // (synchronous_commit on), so a kill -9 of PostgreSQL loses no committed
  // row; otherwise the quick settings, for tests that only stop it cleanly.
  explicit private_postgres(bool crash_safe = false)
      : dir_(service_dir("pg")), bouncer_dir_(service_dir("pgb")),
        port_(free_port()), bouncer_port_(free_port()),
        crash_safe_(crash_safe) {
    start();
    must("postd_start_pgbouncer " + bouncer_dir_ + " " +
         std::to_string(bouncer_port_) + " " + std::to_string(port_));
    pqxx::connection conn{url_to(port_, "postgres")};
    pqxx::nontransaction tx{conn};
    tx.exec("CREATE DATABASE " + tx.quote_name(db_));
  }
  ~private_postgres() {
    shell("postd_stop_pgbouncer " + bouncer_dir_);
    stop();
    shell("rm -rf " + dir_ + " " + bouncer_dir_);
  }
  private_postgres(const private_postgres&) = delete;
  private_postgres& operator=(const private_postgres&) = delete;

  void start() {
    // fsync off either way: the machine does not crash in these tests.
    must("postd_start_postgres " + dir_ + " " + std::to_string(port_) +
         " fsync=off full_page_writes=off" +
         (crash_safe_ ? "" : " synchronous_commit=off"));
  }
  void stop() { shell("postd_stop_postgres " + dir_); }
  // Sends SIG`sig` to the postmaster and every process it forked (STOP:
  // hung, CONT, KILL: crashed; KILL also waits until they are gone).
  void signal_all(const std::string& sig) {
    const std::string pm = "\"$(head -1 " + dir_ + "/postmaster.pid)\"";
    must("pm=" + pm + "; kill -" + sig + " $(pgrep -P \"$pm\") \"$pm\"" +
         (sig == "KILL" ? " && _postd_wait_gone \"$pm\" postgres 10" : ""));
  }
  void restart_bouncer() {
    must("postd_stop_pgbouncer " + bouncer_dir_);
    must("postd_start_pgbouncer " + bouncer_dir_ + " " +
         std::to_string(bouncer_port_) + " " + std::to_string(port_));
  }
  std::string direct_url() const { return url_to(port_, db_); }
  int port() const { return port_; }
  const std::string& database() const { return db_; }
  const std::string& dir() const { return dir_; }
  std::string pgbouncer_url() const { return url_to(bouncer_port_, db_); }

  static std::string url_to(int port, const std::string& db) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + db;
  }

private:
  std::string dir_, bouncer_dir_;
  int port_, bouncer_port_;
  bool crash_safe_;
  std::string db_ = unique_name("postd_fault");
};

// A streaming standby of `primary` (pg_basebackup: the primary's databases
// and settings), on a port of its own. Synchronous once the primary names
// it (make_synchronous); promote() makes it a primary.
class private_standby {
public:
  explicit private_standby(const private_postgres& primary)
      : dir_(service_dir("pgs")), port_(free_port()), primary_(primary) {
    must("postd_start_pg_standby " + dir_ + " " + std::to_string(port_) + " " +
         std::to_string(primary.port()));
  }
  ~private_standby() {
    shell("postd_stop_postgres " + dir_);
    shell("rm -rf " + dir_);
  }
  private_standby(const private_standby&) = delete;
  private_standby& operator=(const private_standby&) = delete;

  int port() const { return port_; }
  void stop() { shell("postd_stop_postgres " + dir_); }
  // The primary waits for this standby before a COMMIT returns
  // (synchronous_standby_names), from its next transaction on.
  bool make_synchronous() {
    pqxx::connection conn{
        private_postgres::url_to(primary_.port(), "postgres")};
    pqxx::nontransaction tx{conn};
    tx.exec("ALTER SYSTEM SET synchronous_standby_names = '*'");
    tx.exec("SELECT pg_reload_conf()");
    return eventually([&] {
      return tx.exec("SELECT 1 FROM pg_stat_replication WHERE sync_state = "
                     "'sync'")
                 .size() == 1;
    });
  }
  // pg_promote(): read-write from its return on.
  void promote() {
    pqxx::connection conn{private_postgres::url_to(port_, "postgres")};
    pqxx::nontransaction tx{conn};
    tx.exec("SELECT pg_promote(true, 30)");
  }

private:
  std::string dir_;
  int port_;
  const private_postgres& primary_;
};

} // namespace postd::testing
