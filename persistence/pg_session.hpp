#pragma once

// How post_store and migrate open a PostgreSQL connection and each of its
// transactions, from pg_options. Internal to persistence/ (it needs libpqxx).

#include <string>

#include <pqxx/pqxx>

#include "persistence/postgres.hpp"
#include "persistence/sql.hpp"

namespace postd::persistence::detail {

// options.url with libpq's connect_timeout appended: a later value wins in
// both of libpq's forms, so it overrides one already in the url.
inline std::string conninfo(const pg_options& options) {
  const std::string& url = options.url;
  auto ms = options.connect_timeout.count();
  if (ms <= 0)
    return url;
  // libpq takes whole seconds: rounded up, a wait is never cut to zero.
  auto seconds = (ms + 999) / 1000;
  auto param = "connect_timeout=" + std::to_string(seconds);
  bool uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  if (!uri)
    return url + (url.empty() ? "" : " ") + param;
  if (url.find('?') == std::string::npos)
    return url + "?" + param;
  return url + (url.ends_with('?') || url.ends_with('&') ? "" : "&") + param;
}

// The SET LOCALs that open every transaction ("" when there are none), each
// ending in "; " so a statement without parameters can follow in the same
// round trip.
inline std::string transaction_settings(pqxx::connection_base& c,
                                        const pg_options& options) {
  std::string out;
  if (options.statement_timeout.count() > 0)
    out += sql::set_statement_timeout +
           std::to_string(options.statement_timeout.count()) + "; ";
  if (!options.schema.empty())
    out += sql::set_search_path + c.quote_name(options.schema) + "; ";
  return out;
}

} // namespace postd::persistence::detail
