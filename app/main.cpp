// postd: serve | migrate | token (SPEC §1). Exit codes: 0 ok, 2 bad
// configuration (one line naming the variable), 1 anything else.

#include <iostream>
#include <map>
#include <optional>

#include <CLI/CLI.hpp>

#include "app/config.hpp"
#include "app/runtime.hpp"
#include "core/log.hpp"
#include "http/auth.hpp"
#include "persistence/migrations.hpp"

namespace {

using namespace postd;

int run_migrate(const app::config& c, const std::string& dir) {
  try {
    auto migrations = dir.empty() ? persistence::embedded_migrations()
                                  : persistence::load_migrations(dir);
    // No statement timeout: an index build on a large "Post", or waiting for
    // another instance's migrate to release the lock, may rightly take long.
    auto report = persistence::migrate(
        persistence::pg_options{
            .url = c.database_url,
            .schema = c.database_schema,
            .connect_timeout =
                std::chrono::milliseconds{c.db_connect_timeout_ms},
            .statement_timeout = std::chrono::milliseconds::zero()},
        migrations);
    for (const auto& name : report.modified)
      std::cerr << "postd migrate: warning: " << name
                << " was applied with a different checksum\n";
    for (const auto& name : report.applied)
      std::cout << "applied " << name << "\n";
    std::cout << report.applied.size() << " migration(s) applied, "
              << report.already_applied << " already applied\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "postd migrate: " << e.what() << "\n";
    return 1;
  }
}

int run(int argc, char** argv) {
  app::block_signals();
  CLI::App cli{"postd: accepts posts at high rates and persists them reliably"};
  cli.fallthrough();
  cli.require_subcommand(0, 1);

  std::map<std::string, std::string> flag_values;
  std::map<std::string, CLI::Option*> flag_options;
  for (const auto& s : app::settings()) {
    auto* opt = cli.add_option(app::flag_name(s.name), flag_values[s.name],
                               s.help + " [env " + s.name + ", default " +
                                   (s.documented_default().empty()
                                        ? "empty"
                                        : s.documented_default()) +
                                   ", " + s.range + "]");
    flag_options[s.name] = opt;
  }
  bool help_env = false;
  cli.add_flag("--help-env", help_env,
               "list every setting: variable, default, range, meaning");

  auto* serve_cmd =
      cli.add_subcommand("serve", "run the HTTP server (the default)");
  auto* migrate_cmd =
      cli.add_subcommand("migrate", "apply pending migrations and exit");
  std::string migrations_dir;
  migrate_cmd->add_option(
      "--migrations-dir", migrations_dir,
      "read migrations from this folder instead of the built-in ones");
  auto* token_cmd =
      cli.add_subcommand("token", "print an HS256 JWT signed with JWT_SECRET");
  std::string subject;
  long long ttl = 3600;
  token_cmd->add_option("--sub", subject, "the author id (the `sub` claim)")
      ->required();
  token_cmd->add_option("--ttl", ttl, "seconds until it expires")
      ->check(CLI::PositiveNumber);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = cli.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (help_env) {
    std::cout << app::settings_table();
    return 0;
  }

  auto values = app::values_from_environment();
  for (const auto& [name, opt] : flag_options)
    if (opt->count() > 0)
      values[name] = flag_values[name];

  app::config config;
  try {
    config = app::parse_config(values);
    bool token = token_cmd->parsed();
    bool migrate = migrate_cmd->parsed();
    app::require(config, /*database=*/!token, /*jwt_secret=*/!migrate);
  } catch (const app::config_error& e) {
    std::cerr << "postd: " << e.what() << "\n";
    return 2;
  }
  for (const auto& knob : app::fault_knobs())
    if (auto it = values.find(knob.name); it != values.end())
      std::cerr << "postd: warning: " << knob.name << "=" << it->second
                << " is set: a fault-injection knob for tests (" << knob.help
                << "), never for production\n";

  if (token_cmd->parsed()) {
    http::token_verifier tokens{config.jwt_secret};
    std::cout << tokens.issue(subject, std::chrono::seconds{ttl}) << "\n";
    return 0;
  }
  if (migrate_cmd->parsed())
    return run_migrate(config, migrations_dir);
  (void)serve_cmd;
  log::init(config.log_level, config.log_format);
  return app::serve(config);
}
} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "postd: " << e.what() << "\n";
    return 1;
  }
}
