#include "persistence/postgres.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "persistence/pg_session.hpp"
#include "persistence/pg_watchdog.hpp"
#include "persistence/sql.hpp"

namespace postd::persistence {
namespace {

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

// libpq sends text parameters as C strings: a NUL would silently cut the
// value, and a "Post" row cannot hold one anyway.
void check_row(const new_post& row) {
  if (row.job_id.empty() || row.id.empty())
    throw postgres_error("a post needs a non-empty id and job id (job '" +
                             row.job_id + "')",
                         false);
  bool nul = has_nul(row.id) || has_nul(row.job_id) || has_nul(row.content) ||
             has_nul(row.author_id) || has_nul(row.idempotency_key) ||
             std::any_of(row.images.begin(), row.images.end(), has_nul);
  if (nul)
    throw postgres_error("post for job '" + row.job_id +
                             "' contains a NUL byte, which PostgreSQL text "
                             "cannot store",
                         false);
}

std::string row_json(const new_post& row) {
  try {
    nlohmann::json out{{"id", row.id},
                       {"content", row.content},
                       {"authorId", row.author_id},
                       {"images", row.images},
                       {"jobId", row.job_id},
                       {"key", nullptr},
                       {"queuedAt", row.queued_at_ms}};
    if (!row.idempotency_key.empty())
      out["key"] = row.idempotency_key;
    return out.dump();
  } catch (const nlohmann::json::exception& e) {
    throw postgres_error("post for job '" + row.job_id +
                             "' is not valid UTF-8: " + e.what(),
                         false);
  }
}

// Rows go in id order so two writers holding overlapping batches (a stalled
// job handed out twice) lock the primary key in the same order and cannot
// deadlock.
std::string batch_json(const std::vector<new_post>& rows) {
  std::vector<const new_post*> sorted;
  sorted.reserve(rows.size());
  for (const auto& row : rows) {
    check_row(row);
    sorted.push_back(&row);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const new_post* a, const new_post* b) { return a->id < b->id; });
  std::string out = "[";
  for (const auto* row : sorted) {
    if (out.size() > 1)
      out += ',';
    out += row_json(*row);
  }
  out += ']';
  return out;
}

post to_post(const pqxx::row& r) {
  post p{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
         r[3].as<std::string>(), r[4].as<std::string>(std::string{})};
  auto images =
      nlohmann::json::parse(r[5].as<std::string>("[]"), nullptr, false);
  if (images.is_array())
    for (const auto& url : images)
      if (url.is_string())
        p.images.push_back(url.get<std::string>());
  return p;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

template <class Connection>
std::unique_ptr<Connection> connect(const pg_options& options) {
  try {
    return std::make_unique<Connection>(options);
  } catch (const pqxx::pqxx_exception& e) {
    throw postgres_error(
        "cannot connect to PostgreSQL: " + trimmed(e.base().what()), true);
  }
}

// Class 57P (admin/crash shutdown, database dropped) and 08 (connection
// exceptions) end the session even when libpq still reports it open for a
// moment; 25006 (a read-only transaction: the server is a standby now, after
// a failover) makes it useless: the next connection, through a multi-host
// URL's target_session_attrs=read-write, finds the new primary.
bool ends_session(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr)
    return true;
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr)
    return false;
  const auto& state = sql->sqlstate();
  return state.starts_with("57P") || state.starts_with("08") ||
         state == "25006";
}

// Only these errors are the rows' own doing, so retrying cannot help: data
// exceptions (22: bad encoding, out of range), constraint violations (23),
// program limits (54: a key too large to index). Anything else (disk full, a
// read-only server after failover, statement_timeout's 57014, a missing column
// before `postd migrate`) passes: the jobs must wait, not fail (SPEC §6).
bool rows_at_fault(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr)
    return false;
  auto error_class = std::string_view(sql->sqlstate()).substr(0, 2);
  return error_class == "22" || error_class == "23" || error_class == "54";
}

std::string describe(const std::exception& e) {
  std::string what = trimmed(e.what());
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
      sql != nullptr && !sql->sqlstate().empty())
    what += " (SQLSTATE " + sql->sqlstate() + ")";
  return what;
}

// A transaction whose settings (statement timeout, search_path) go out with
// its first statement when that takes no parameters, else just before it: one
// extra round trip at most.
template <class Tx> class opened_transaction {
public:
  opened_transaction(pqxx::connection& c, std::string settings)
      : tx_(c), settings_(std::move(settings)) {}

  pqxx::result exec(const char* statement) {
    return tx_.exec(std::exchange(settings_, {}) + statement);
  }

  template <class... Args>
  pqxx::result exec_params(const char* statement, Args&&... args) {
    if (!settings_.empty())
      tx_.exec(std::exchange(settings_, {}));
    return tx_.exec_params(statement, std::forward<Args>(args)...);
  }

  void commit() { tx_.commit(); }

private:
  Tx tx_;
  std::string settings_;
};

} // namespace

// One libpq session. Its notices go nowhere: libpq would print them to
// stderr, around the structured log.
struct post_store::connection {
  explicit connection(const pg_options& options)
      : pq(detail::conninfo(options)),
        settings(detail::transaction_settings(pq, options)) {}
  pqxx::connection pq;
  pqxx::quiet_errorhandler quiet{pq}; // declared after pq: dies before it
  std::string settings;               // each transaction's SET LOCALs
};

post_store::post_store(pg_options options)
    : options_(std::move(options)), conn_(connect<connection>(options_)) {}

post_store::post_store(const std::string& database_url)
    : post_store(pg_options{.url = database_url}) {}

post_store::~post_store() = default;

template <class Tx, class F> auto post_store::run(F&& f) {
  using clock = detail::pg_watchdog::clock;
  auto bound = options_.statement_timeout.count() > 0
                   ? options_.statement_timeout + client_slack
                   : std::chrono::milliseconds{0};
  auto deadline = clock::time_point::max();
  try {
    if (!conn_)
      conn_ = connect<connection>(options_);
    auto transaction = [&] {
      opened_transaction<Tx> tx{conn_->pq, conn_->settings};
      auto result = f(tx);
      tx.commit();
      return result;
    };
    if (bound.count() == 0)
      return transaction();
    deadline = clock::now() + bound;
    auto watch =
        detail::pg_watchdog::instance().arm(conn_->pq.sock(), deadline);
    return transaction();
  } catch (const postgres_error&) {
    throw;
  } catch (const pqxx::pqxx_exception& e) {
    if (ends_session(e.base()) || !conn_ || !conn_->pq.is_open())
      conn_.reset(); // the next call connects afresh
    if (clock::now() >= deadline) {
      conn_.reset(); // its socket was shut down
      throw postgres_error(
          "PostgreSQL did not answer within " + std::to_string(bound.count()) +
              " ms: connection cut (" + describe(e.base()) + ")",
          true);
    }
    throw postgres_error(describe(e.base()), !rows_at_fault(e.base()));
  }
}

insert_outcome post_store::insert_posts(const std::vector<new_post>& rows) {
  if (rows.empty())
    return {};
  const std::string batch = batch_json(rows);
  return run<pqxx::work>([&](auto& tx) {
    insert_outcome out;
    auto counts = tx.exec_params(sql::insert_posts, batch);
    out.inserted = counts[0][0].template as<std::size_t>();
    if (counts[0][1].template as<std::size_t>() <
        counts[0][2].template as<std::size_t>())
      for (const auto& r : tx.exec_params(sql::insert_post_keys, batch))
        out.earlier.emplace(r[0].template as<std::string>(),
                            r[1].template as<std::string>());
    return out;
  });
}

std::size_t post_store::forget_keys(std::int64_t queued_before_ms) {
  return run<pqxx::work>([&](auto& tx) {
    return static_cast<std::size_t>(
        tx.exec_params(sql::forget_post_keys, queued_before_ms)
            .affected_rows());
  });
}

std::optional<post> post_store::find_post(const std::string& id) {
  if (has_nul(id))
    return std::nullopt; // no row can hold it
  return run<pqxx::read_transaction>([&](auto& tx) -> std::optional<post> {
    auto r = tx.exec_params(sql::find_post, id);
    if (r.empty())
      return std::nullopt;
    return to_post(r[0]);
  });
}

std::optional<post> post_store::find_post_by_job(const std::string& job_id,
                                                 const std::string& author_id) {
  if (has_nul(job_id) || has_nul(author_id))
    return std::nullopt;
  return run<pqxx::read_transaction>([&](auto& tx) -> std::optional<post> {
    auto r = tx.exec_params(sql::find_post_by_job, job_id, author_id);
    if (r.empty())
      return std::nullopt;
    return to_post(r[0]);
  });
}

std::vector<post>
post_store::posts_by_author(const std::string& author_id, std::size_t limit,
                            const std::optional<post>& after) {
  if (limit == 0 || has_nul(author_id) ||
      (after && (has_nul(after->created_at) || has_nul(after->id))))
    return {};
  return run<pqxx::read_transaction>([&](auto& tx) {
    auto r = after ? tx.exec_params(sql::next_page, author_id,
                                    after->created_at, after->id, limit)
                   : tx.exec_params(sql::first_page, author_id, limit);
    std::vector<post> out;
    out.reserve(r.size());
    for (const auto& row : r)
      out.push_back(to_post(row));
    return out;
  });
}

std::unordered_set<std::string>
post_store::referenced_images(const std::vector<std::string>& urls,
                              std::size_t batch) {
  return run<pqxx::read_transaction>([&](auto& tx) {
    std::unordered_set<std::string> out;
    for (std::size_t from = 0; from < urls.size(); from += batch) {
      auto last = urls.begin() + static_cast<std::ptrdiff_t>(
                                     std::min(from + batch, urls.size()));
      auto some = nlohmann::json(std::vector<std::string>(
          urls.begin() + static_cast<std::ptrdiff_t>(from), last));
      for (const auto& row :
           tx.exec_params(sql::referenced_file_urls, some.dump()))
        out.insert(row[0].template as<std::string>());
    }
    return out;
  });
}

void post_store::ping() {
  run<pqxx::read_transaction>([](auto& tx) { return tx.exec(sql::ping); });
}

} // namespace postd::persistence
