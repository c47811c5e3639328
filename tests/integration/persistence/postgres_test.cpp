#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ids.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_session.hpp"
#include "persistence/postgres.hpp"
#include "persistence/sql.hpp"
#include "support/test_env.hpp"

namespace {

using namespace postd::persistence;
using postd::core::new_post_id;

class PostgresStore : public ::testing::Test {
protected:
  void SetUp() override {
    migrate(db_.direct_url(), embedded_migrations());
    store_ = std::make_unique<post_store>(db_.pgbouncer_url());
  }

  static new_post row(const std::string& job, const std::string& author,
                      const std::string& content = "hello",
                      std::vector<std::string> images = {}) {
    return new_post{new_post_id(),     job, content, author,
                    std::move(images), {},  0};
  }

  // A row of a create with an Idempotency-Key, queued at `queued_at_ms`.
  static new_post keyed(const std::string& job, const std::string& author,
                        const std::string& key, std::int64_t queued_at_ms,
                        const std::string& content) {
    auto r = row(job, author, content);
    r.idempotency_key = key;
    r.queued_at_ms = queued_at_ms;
    return r;
  }

  static std::vector<new_post> rows(const std::string& prefix, int n,
                                    const std::string& author = "author-1") {
    std::vector<new_post> out;
    for (int i = 0; i < n; ++i)
      out.push_back(row(prefix + std::to_string(i), author,
                        "post " + std::to_string(i) + " of " + prefix));
    return out;
  }

  long count_rows() {
    pqxx::connection conn{db_.direct_url()};
    pqxx::nontransaction tx{conn};
    return tx.exec1(R"(SELECT count(*) FROM "Post")")[0].as<long>();
  }

  void exec(const std::string& sql) {
    pqxx::connection conn{db_.direct_url()};
    pqxx::nontransaction tx{conn};
    tx.exec(sql);
  }

  postd::testing::scratch_database db_;
  std::unique_ptr<post_store> store_;
};

TEST_F(PostgresStore, InsertsABatchThroughPgBouncer) {
  auto batch = rows("job-", 256);
  EXPECT_EQ(store_->insert_posts(batch).inserted, 256u);
  EXPECT_EQ(count_rows(), 256);

  auto stored = store_->find_post(batch[17].id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->content, batch[17].content);
  EXPECT_EQ(stored->author_id, "author-1");
  EXPECT_EQ(stored->job_id, "job-17");
  EXPECT_EQ(store_->insert_posts({}).inserted, 0u);
}

// A job written twice (a retry after a lost COMMIT reply, a stalled job taken
// again) carries the same post id: one row, the first one kept.
TEST_F(PostgresStore, ReinsertingTheSamePostsCreatesNothing) {
  auto batch = rows("job-", 50);
  EXPECT_EQ(store_->insert_posts(batch).inserted, 50u);
  auto retry = batch;
  for (auto& r : retry)
    r.content = "changed"; // the first write wins
  EXPECT_EQ(store_->insert_posts(retry).inserted, 0u);
  EXPECT_EQ(count_rows(), 50);
  EXPECT_EQ(store_->find_post(batch[3].id)->content, batch[3].content);
}

TEST_F(PostgresStore, ABatchMixingNewAndExistingPosts) {
  auto old_rows = rows("job-", 10);
  store_->insert_posts(old_rows);
  std::vector<new_post> mixed(old_rows.begin() + 5, old_rows.end());
  for (int i = 10; i < 15; ++i)
    mixed.push_back(row("job-" + std::to_string(i), "author-2"));
  EXPECT_EQ(store_->insert_posts(mixed).inserted, 5u);
  EXPECT_EQ(count_rows(), 15);
  for (const auto& r : mixed)
    EXPECT_EQ(store_->find_post(r.id)->job_id, r.job_id);
}

TEST_F(PostgresStore, APostTwiceInOneBatchYieldsOneRow) {
  auto a = row("job-x", "author-1", "first");
  auto b = a;
  EXPECT_EQ(store_->insert_posts({a, b}).inserted, 1u);
  EXPECT_EQ(count_rows(), 1);
  EXPECT_EQ(store_->find_post(a.id)->job_id, "job-x");
}

// Bull's job ids start over when Redis loses its state: the same jobId on a
// new post is a new row, never taken for the old one (issue 10's loss).
TEST_F(PostgresStore, AReusedJobIdIsANewPost) {
  auto before = row("7", "author-1", "before the reset");
  auto after = row("7", "author-1", "after the reset");
  // Both may be written within one millisecond: then the id decides.
  before.id = "0-" + before.id;
  after.id = "1-" + after.id;
  auto other = row("7", "author-2", "someone else's job 7");
  EXPECT_EQ(store_->insert_posts({before}).inserted, 1u);
  EXPECT_EQ(store_->insert_posts({after, other}).inserted, 2u);
  EXPECT_EQ(count_rows(), 3);
  EXPECT_EQ(store_->find_post(before.id)->content, "before the reset");
  EXPECT_EQ(store_->find_post(after.id)->content, "after the reset");
  // The job-status route's fallback: the author's newest row for that id.
  EXPECT_EQ(store_->find_post_by_job("7", "author-1")->id, after.id);
  EXPECT_EQ(store_->find_post_by_job("7", "author-2")->id, other.id);
  EXPECT_FALSE(store_->find_post_by_job("7", "author-3"));
}

// A create retried with its Idempotency-Key after Redis lost the key (the
// old master of a failover queued the first attempt, a writer wrote it,
// the new master queued the retry): the retry's job is a second post id
// with the same key. The first post stands for it and carries the jobId of
// the retry, the one the client was answered.
TEST_F(PostgresStore, ARetryWithTheSameKeyIsTheEarlierPost) {
  constexpr std::int64_t t0 = 1'790'000'000'000;
  auto first = keyed("5", "author-1", "k-1", t0, "first attempt");
  auto retry = keyed("9", "author-1", "k-1", t0 + 3000, "retry");
  auto out = store_->insert_posts({first});
  EXPECT_EQ(out.inserted, 1u);
  EXPECT_TRUE(out.earlier.empty());

  out = store_->insert_posts({retry});
  EXPECT_EQ(out.inserted, 0u);
  EXPECT_EQ(out.earlier,
            (std::map<std::string, std::string>{{retry.id, first.id}}));
  EXPECT_EQ(count_rows(), 1);
  EXPECT_FALSE(store_->find_post(retry.id));
  EXPECT_EQ(store_->find_post(first.id)->job_id, "9");
  EXPECT_EQ(store_->find_post_by_job("9", "author-1")->id, first.id);

  // The first job written again (its writer lost the COMMIT's answer): still
  // one row, still labelled with the retry's job.
  out = store_->insert_posts({first});
  EXPECT_EQ(out.inserted, 0u);
  EXPECT_TRUE(out.earlier.empty());
  EXPECT_EQ(store_->find_post(first.id)->job_id, "9");
}

// The order the jobs are written in does not matter: the retry written
// first holds the key, the earlier attempt written later is left out and
// leaves the label alone (the retry is the newer job).
TEST_F(PostgresStore, AnEarlierAttemptWrittenAfterItsRetryIsLeftOut) {
  constexpr std::int64_t t0 = 1'790'000'000'000;
  auto first = keyed("5", "author-1", "k-1", t0, "first attempt");
  auto retry = keyed("9", "author-1", "k-1", t0 + 3000, "retry");
  EXPECT_EQ(store_->insert_posts({retry}).inserted, 1u);
  auto out = store_->insert_posts({first});
  EXPECT_EQ(out.inserted, 0u);
  EXPECT_EQ(out.earlier.at(first.id), retry.id);
  EXPECT_EQ(count_rows(), 1);
  EXPECT_EQ(store_->find_post(retry.id)->job_id, "9");
}

// Both attempts in one batch (one writer took both): the earlier one is the
// row, labelled with the later one's job.
TEST_F(PostgresStore, BothAttemptsInOneBatchAreOneRow) {
  constexpr std::int64_t t0 = 1'790'000'000'000;
  auto first = keyed("5", "author-1", "k-1", t0, "first attempt");
  auto retry = keyed("9", "author-1", "k-1", t0 + 3000, "retry");
  auto other = keyed("10", "author-1", "k-2", t0 + 3000, "another key");
  auto out = store_->insert_posts({retry, other, first});
  EXPECT_EQ(out.inserted, 2u);
  EXPECT_EQ(out.earlier,
            (std::map<std::string, std::string>{{retry.id, first.id}}));
  EXPECT_EQ(count_rows(), 2);
  EXPECT_EQ(store_->find_post(first.id)->job_id, "9");
  EXPECT_EQ(store_->find_post(other.id)->job_id, "10");
}

// A key is the author's, for 24 h (SPEC §3): another author's same key, and
// the same author's key reused a day later, are new posts.
TEST_F(PostgresStore, AKeyIsTheAuthorsForADay) {
  constexpr std::int64_t t0 = 1'790'000'000'000;
  constexpr std::int64_t day = 86'400'000;
  auto first = keyed("1", "author-1", "k-1", t0, "first");
  auto someone_else = keyed("2", "author-2", "k-1", t0 + 1, "someone else");
  auto almost_a_day = keyed("3", "author-1", "k-1", t0 + day - 1, "retry");
  auto a_day_later = keyed("4", "author-1", "k-1", t0 + day, "a new post");
  EXPECT_EQ(store_->insert_posts({first, someone_else}).inserted, 2u);
  auto out = store_->insert_posts({almost_a_day});
  EXPECT_EQ(out.earlier.at(almost_a_day.id), first.id);
  out = store_->insert_posts({a_day_later});
  EXPECT_EQ(out.inserted, 1u);
  EXPECT_TRUE(out.earlier.empty());
  EXPECT_EQ(count_rows(), 3);
  EXPECT_EQ(store_->find_post(first.id)->job_id, "3");
  EXPECT_EQ(store_->find_post(a_day_later.id)->job_id, "4");
}

// Two writers holding the two attempts at once: one row whichever commits
// first, and the other learns which.
TEST_F(PostgresStore, ConcurrentAttemptsAreOneRow) {
  constexpr std::int64_t t0 = 1'790'000'000'000;
  for (int round = 0; round < 20; ++round) {
    const auto key = "race-" + std::to_string(round);
    auto a = keyed("a" + key, "author-1", key, t0, "attempt a");
    auto b = keyed("b" + key, "author-1", key, t0 + 1, "attempt b");
    post_store other{db_.pgbouncer_url()};
    insert_outcome from_b;
    std::thread racer{[&] { from_b = other.insert_posts({b}); }};
    auto from_a = store_->insert_posts({a});
    racer.join();
    EXPECT_EQ(from_a.inserted + from_b.inserted, 1u) << key;
    EXPECT_EQ(from_a.earlier.size() + from_b.earlier.size(), 1u) << key;
  }
  EXPECT_EQ(count_rows(), 20);
}

// A primary that became a standby (a failover the URL's hosts did not show
// yet) answers 25006 to a write: retried, on a new connection, which finds
// a writable server (here: the same one made writable again; the old
// session would stay read-only).
TEST_F(PostgresStore, AReadOnlyServerIsRetriedOnANewConnection) {
  const auto database =
      pqxx::connection{db_.direct_url()}.quote_name(db_.name());
  exec("ALTER DATABASE " + database +
       " SET default_transaction_read_only = on");
  post_store store{db_.direct_url()};
  store.ping();
  try {
    store.insert_posts({row("job-1", "author-1")});
    FAIL() << "a read-only server took the insert";
  } catch (const postgres_error& e) {
    EXPECT_TRUE(e.connection_lost()) << e.what();
    EXPECT_NE(std::string(e.what()).find("25006"), std::string::npos)
        << e.what();
  }
  pqxx::connection admin{postd::testing::admin_url()};
  pqxx::nontransaction{admin}.exec("ALTER DATABASE " + database +
                                   " RESET default_transaction_read_only");
  EXPECT_EQ(store.insert_posts({row("job-1", "author-1")}).inserted, 1u);
}

TEST_F(PostgresStore, ContentRoundTripsByteExact) {
  const std::vector<std::string> contents{
      "it's \"quoted\" and 'single'",
      "back\\slash \\\\ \\n \\u0000 \\x00 and a trailing \\",
      "line\nbreaks\r\nand\ttabs\n\n",
      "emoji 😀👍🏽👨‍👩‍👧 and ñ é 中文 𝄞",
      "'); DROP TABLE \"Post\"; --",
      "{\"json\": [1, 2, {\"x\": null}]}  $1 $$ %s {}",
      std::string(10000, 'x'),
  };
  std::vector<new_post> batch;
  for (std::size_t i = 0; i < contents.size(); ++i)
    batch.push_back(row("job-" + std::to_string(i), "author \"A\"\\",
                        contents[i],
                        {"https://x/a,b.png", "{\"q\"}", "", "NULL", "é\\"}));
  store_->insert_posts(batch);
  for (const auto& r : batch) {
    auto by_id = store_->find_post(r.id);
    ASSERT_TRUE(by_id);
    EXPECT_EQ(by_id->content, r.content);
    EXPECT_EQ(by_id->author_id, r.author_id);
    EXPECT_EQ(store_->find_post_by_job(r.job_id, r.author_id)->content,
              r.content);
  }
  auto page = store_->posts_by_author("author \"A\"\\", 100, std::nullopt);
  EXPECT_EQ(page.size(), contents.size());

  pqxx::connection conn{db_.direct_url()};
  pqxx::nontransaction tx{conn};
  auto images = tx.exec_params1(
      R"(SELECT array_to_json(images)::text FROM "Post" WHERE id = $1)",
      batch[0].id)[0];
  EXPECT_EQ(nlohmann::json::parse(images.as<std::string>()),
            nlohmann::json(batch[0].images));
}

TEST_F(PostgresStore, ANulByteIsAClearErrorNotACrash) {
  auto bad = row("job-nul", "author-1", std::string("a\0b", 3));
  try {
    store_->insert_posts({row("job-ok", "author-1"), bad});
    FAIL() << "insert succeeded";
  } catch (const postgres_error& e) {
    EXPECT_FALSE(e.connection_lost());
    EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("job-nul"), std::string::npos);
  }
  EXPECT_EQ(count_rows(), 0);
  EXPECT_FALSE(store_->find_post(std::string("x\0y", 3)));
  EXPECT_TRUE(
      store_->posts_by_author(std::string("a\0", 2), 10, std::nullopt).empty());
  EXPECT_EQ(store_->insert_posts({row("job-ok", "author-1")}).inserted, 1u);
}

TEST_F(PostgresStore, InvalidUtf8IsAClearError) {
  try {
    store_->insert_posts({row("job-bad", "author-1", "\xff\xfe")});
    FAIL() << "insert succeeded";
  } catch (const postgres_error& e) {
    EXPECT_FALSE(e.connection_lost());
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos);
  }
  // Straight into a query parameter, PostgreSQL refuses it.
  try {
    store_->find_post("\xff");
    FAIL() << "find succeeded";
  } catch (const postgres_error& e) {
    EXPECT_FALSE(e.connection_lost());
  }
  store_->ping();
}

// A key over btree's 2704-byte limit is the row's fault: retrying cannot help.
TEST_F(PostgresStore, AKeyTooLargeToIndexIsTheRowsFault) {
  std::string huge_author;
  while (huge_author.size() < 8000)
    huge_author += new_post_id(); // random: no compression under the limit
  try {
    store_->insert_posts({row("job-huge", huge_author)});
    FAIL() << "insert succeeded";
  } catch (const postgres_error& e) {
    EXPECT_FALSE(e.connection_lost()) << e.what();
    EXPECT_NE(std::string(e.what()).find("54000"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(store_->insert_posts({row("job-fine", "author-1")}).inserted, 1u);
}

// Errors that are not the rows' doing must leave the jobs waiting (SPEC §6):
// here the database has not been migrated yet, later it is.
TEST(PostgresNotReady, ErrorsNotCausedByTheRowsAreRetryable) {
  postd::testing::scratch_database db;
  post_store store{db.pgbouncer_url()};
  new_post p{new_post_id(), "job-1", "early", "author-1", {}, {}, 0};
  try {
    store.insert_posts({p});
    FAIL() << "insert into a missing table succeeded";
  } catch (const postgres_error& e) {
    EXPECT_TRUE(e.connection_lost()) << e.what();
  }
  EXPECT_THROW(store.find_post("x"), postgres_error);
  migrate(db.direct_url(), embedded_migrations());
  EXPECT_EQ(store.insert_posts({p}).inserted, 1u);
  EXPECT_EQ(store.find_post(p.id)->content, "early");
}

TEST_F(PostgresStore, UnknownIdsAreNotFound) {
  EXPECT_FALSE(store_->find_post("no-such-id"));
  EXPECT_FALSE(store_->find_post_by_job("no-such-job", "author-1"));
  EXPECT_TRUE(store_->posts_by_author("nobody", 20, std::nullopt).empty());
}

TEST_F(PostgresStore, CreatedAtIsUtcIsoWithMilliseconds) {
  auto r = row("job-1", "author-1");
  store_->insert_posts({r});
  auto p = store_->find_post(r.id);
  ASSERT_TRUE(p);
  EXPECT_TRUE(std::regex_match(
      p->created_at, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)")))
      << p->created_at;
  // Compare with the clock in UTC whatever the server's TimeZone.
  pqxx::connection conn{db_.direct_url()};
  pqxx::nontransaction tx{conn};
  auto age = tx.exec_params1("SELECT extract(epoch FROM (now() AT TIME ZONE "
                             "'UTC') - $1::timestamp)",
                             p->created_at)[0]
                 .as<double>();
  EXPECT_GE(age, -1.0);
  EXPECT_LT(age, 60.0);
}

// Reads every page of `author` through posts_by_author.
std::vector<post> all_pages(post_store& store, const std::string& author,
                            std::size_t limit) {
  std::vector<post> out;
  std::optional<post> after;
  for (int guard = 0; guard < 10000; ++guard) {
    auto page = store.posts_by_author(author, limit, after);
    EXPECT_LE(page.size(), limit);
    out.insert(out.end(), page.begin(), page.end());
    if (page.size() < limit)
      return out;
    after = page.back();
  }
  ADD_FAILURE() << "pagination does not end";
  return out;
}

TEST_F(PostgresStore, PaginationReturnsEveryRowOnceNewestFirst) {
  // Rows of one batch share their createdAt: ties that only id can order.
  for (int b = 0; b < 4; ++b) {
    store_->insert_posts(rows("b" + std::to_string(b) + "-", 9));
    store_->insert_posts(
        rows("other" + std::to_string(b) + "-", 3, "author-2"));
  }
  // And ties across batches, at a millisecond boundary.
  exec(R"(UPDATE "Post" SET "createdAt" = '2025-11-26 12:00:00.999'
          WHERE "jobId" LIKE 'b1-%' OR "jobId" LIKE 'b2-%')");

  std::vector<std::string> expected;
  {
    pqxx::connection conn{db_.direct_url()};
    pqxx::nontransaction tx{conn};
    for (const auto& r : tx.exec(R"(SELECT id FROM "Post"
           WHERE "authorId" = 'author-1' ORDER BY "createdAt" DESC, id DESC)"))
      expected.push_back(r[0].as<std::string>());
  }
  ASSERT_EQ(expected.size(), 36u);
  for (std::size_t limit : {1u, 4u, 7u, 9u, 36u, 100u}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<std::string> got;
    for (const auto& p : all_pages(*store_, "author-1", limit)) {
      EXPECT_EQ(p.author_id, "author-1");
      got.push_back(p.id);
    }
    EXPECT_EQ(got, expected);
  }
  auto first = store_->posts_by_author("author-1", 100, std::nullopt);
  for (std::size_t i = 1; i < first.size(); ++i)
    EXPECT_GE(first[i - 1].created_at, first[i].created_at); // ISO sorts
}

template <class... Args>
std::string explain(const std::string& url, const std::string& sql,
                    Args&&... args) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  std::string plan;
  const pqxx::result rows = tx.exec_params(
      "EXPLAIN (ANALYZE, COSTS OFF) " + sql, std::forward<Args>(args)...);
  for (const auto& r : rows)
    plan += r[0].as<std::string>() + "\n";
  return plan;
}

// The planner's own choice, no planner settings changed: with 200 authors a
// seq scan is far costlier, and between the two authorId indexes only the
// composite one yields rows in "createdAt" order for the LIMIT.
TEST_F(PostgresStore, PaginationUsesTheAuthorCreatedAtIndex) {
  // 200 authors x 200 posts over ~11 hours, then fresh statistics.
  exec(R"(INSERT INTO "Post" (id, content, "authorId", "jobId", "createdAt",
                               "updatedAt")
          SELECT gen_random_uuid()::text, repeat('x', 200), 'a' || (g % 200),
                 'j' || g, '2025-11-26'::timestamp - g * interval '1 second',
                 now()
          FROM generate_series(1, 40000) AS g;
          ANALYZE "Post";)");
  auto page = store_->posts_by_author("a7", 20, std::nullopt);
  ASSERT_EQ(page.size(), 20u);

  for (const auto& plan :
       {explain(db_.direct_url(), sql::first_page, "a7", 20),
        explain(db_.direct_url(), sql::next_page, "a7", page.back().created_at,
                page.back().id, 20)}) {
    EXPECT_NE(
        plan.find("Index Scan Backward using \"Post_authorId_createdAt_idx\""),
        std::string::npos)
        << plan;
    EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
    std::cout << plan;
  }
}

TEST_F(PostgresStore, Ping) {
  store_->ping();
  post_store direct{db_.direct_url()};
  direct.ping();
}

// A loopback socket on a free port, listening (the kernel completes
// handshakes) or not (connections are refused). Closed with the object.
class loopback_socket {
public:
  explicit loopback_socket(bool listen)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        (listen && ::listen(fd_, 16) != 0)) {
      close();
      throw std::runtime_error("cannot set up a loopback socket");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~loopback_socket() { close(); }
  loopback_socket(const loopback_socket&) = delete;
  loopback_socket& operator=(const loopback_socket&) = delete;
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }
  std::string url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) +
           "/postgres";
  }

private:
  int fd_;
  int port_ = 0;
};

TEST(PostgresConnect, AClosedPortThrowsConnectionLost) {
  loopback_socket closed{false};
  closed.close(); // bound, never listened: nothing answers there now
  auto url = closed.url();
  try {
    post_store store{url};
    FAIL() << "connected to a closed port";
  } catch (const postgres_error& e) {
    EXPECT_TRUE(e.connection_lost());
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos)
        << e.what();
  }
}

TEST_F(PostgresStore, ReconnectsAfterTheServerDropsTheSession) {
  post_store direct{db_.direct_url()};
  direct.ping();
  exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  try {
    direct.ping();
    FAIL() << "ping on a terminated session succeeded";
  } catch (const postgres_error& e) {
    EXPECT_TRUE(e.connection_lost()) << e.what();
  }
  direct.ping(); // a fresh connection
  EXPECT_EQ(direct.insert_posts({row("job-after", "author-1")}).inserted, 1u);
  // PgBouncer hides the dropped server connection: no error at all.
  store_->ping();
}

TEST_F(PostgresStore, InsertRateOf256RowBatchesThroughPgBouncer) {
  constexpr int batches = 40;
  std::vector<std::vector<new_post>> all;
  for (int b = 0; b < batches; ++b) {
    all.push_back(rows("rate" + std::to_string(b) + "-", 256,
                       "author-" + std::to_string(b % 8)));
    for (auto& r : all.back())
      r.content = std::string(200, 'c') + r.content;
  }
  auto start = std::chrono::steady_clock::now();
  for (const auto& batch : all)
    ASSERT_EQ(store_->insert_posts(batch).inserted, 256u);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  double rate = batches * 256 / took.count();
  std::cout << "insert_posts: " << batches
            << " x 256 rows through PgBouncer in " << took.count()
            << " s = " << static_cast<long>(rate) << " rows/s\n";
  RecordProperty("rows_per_second", static_cast<int>(rate));
  EXPECT_EQ(count_rows(), batches * 256);
}

// libpq's connect_timeout bounds a connect to a server that never answers
// (the kernel accepts the TCP connection, no one reads the startup packet).
TEST(PostgresConnect, AServerThatNeverAnswersTimesOut) {
  loopback_socket silent{true};
  auto attempt = [&](const auto& connect) {
    auto start = std::chrono::steady_clock::now();
    try {
      connect();
      ADD_FAILURE() << "connected to a server that never answers";
    } catch (const postgres_error& e) {
      EXPECT_TRUE(e.connection_lost());
      EXPECT_NE(std::string(e.what()).find("timeout"), std::string::npos)
          << e.what();
    } catch (const std::runtime_error& e) { // migrate's
      EXPECT_NE(std::string(e.what()).find("timeout"), std::string::npos)
          << e.what();
    }
    return std::chrono::steady_clock::now() - start;
  };
  // 1 ms rounds up to 1 s, which libpq 15 makes 2 s; it measures with a
  // whole-second clock, hence the margins.
  const pg_options options{.url = silent.url(),
                           .connect_timeout = std::chrono::milliseconds{1}};
  for (auto took : {attempt([&] { post_store store{options}; }),
                    attempt([&] { migrate(options, {}); })}) {
    EXPECT_GE(took, std::chrono::milliseconds{900});
    EXPECT_LT(took, std::chrono::milliseconds{3500});
  }
}

TEST(PgSession, ConnectTimeoutGoesIntoTheUrlInWholeSeconds) {
  using detail::conninfo;
  auto with = [](std::string url, int ms) {
    return conninfo(
        pg_options{.url = std::move(url),
                   .connect_timeout = std::chrono::milliseconds{ms}});
  };
  EXPECT_EQ(with("postgresql://u@h/db", 3000),
            "postgresql://u@h/db?connect_timeout=3");
  EXPECT_EQ(with("postgresql://u@h/db", 2001),
            "postgresql://u@h/db?connect_timeout=3");
  EXPECT_EQ(with("postgresql://u@h/db", 1),
            "postgresql://u@h/db?connect_timeout=1");
  EXPECT_EQ(with("postgresql://u@h/db", 0), "postgresql://u@h/db");
  EXPECT_EQ(with("postgres://u@h/db?sslmode=disable&connect_timeout=9", 3000),
            "postgres://u@h/db?sslmode=disable&connect_timeout=9&"
            "connect_timeout=3"); // the last one wins in libpq
  EXPECT_EQ(with("postgresql://u@h/db?", 3000),
            "postgresql://u@h/db?connect_timeout=3");
  EXPECT_EQ(with("host=h dbname=db", 3000),
            "host=h dbname=db connect_timeout=3");
  EXPECT_EQ(with("", 3000), "connect_timeout=3");
}

// A statement cut by statement_timeout is the database's state, not the rows'
// fault: retryable, and the store works on with the same connection.
TEST_F(PostgresStore, AStatementPastTheTimeoutIsRetryable) {
  post_store store{
      pg_options{.url = db_.pgbouncer_url(),
                 .statement_timeout = std::chrono::milliseconds{300}}};
  auto r = row("job-slow", "author-1");
  pqxx::connection blocker_conn{db_.direct_url()};
  auto blocker = std::make_unique<pqxx::work>(blocker_conn);
  blocker->exec(R"(LOCK TABLE "Post" IN ACCESS EXCLUSIVE MODE)");

  auto expect_timeout = [](const char* what, const auto& call) {
    SCOPED_TRACE(what);
    auto start = std::chrono::steady_clock::now();
    try {
      call();
      ADD_FAILURE() << "succeeded while the table was locked";
    } catch (const postgres_error& e) {
      EXPECT_TRUE(e.connection_lost()) << e.what();
      EXPECT_NE(std::string(e.what()).find("57014"), std::string::npos)
          << e.what();
    }
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::milliseconds{300});
    EXPECT_LT(took, std::chrono::milliseconds{3000});
  };
  expect_timeout("insert", [&] { store.insert_posts({r}); });
  expect_timeout("find", [&] { store.find_post(r.id); });
  expect_timeout("find by job",
                 [&] { store.find_post_by_job("job-slow", "author-1"); });
  expect_timeout("page",
                 [&] { store.posts_by_author("author-1", 5, std::nullopt); });
  store.ping(); // touches no table

  blocker->abort();
  EXPECT_EQ(store.insert_posts({r}).inserted, 1u);
  EXPECT_EQ(store.find_post(r.id)->job_id, "job-slow");
  // The store's default (5 s) does not cut an ordinary call.
  EXPECT_EQ(store_->find_post(r.id)->job_id, "job-slow");
}

// SET LOCAL ends with each transaction: the pooled server connections
// PgBouncer hands to other clients keep the server's settings.
TEST_F(PostgresStore, SettingsDoNotLeakThroughPgBouncer) {
  post_store store{
      pg_options{.url = db_.pgbouncer_url(),
                 .schema = "public",
                 .statement_timeout = std::chrono::milliseconds{1234}}};
  for (int i = 0; i < 20; ++i)
    store.ping();
  store.insert_posts({row("job-1", "author-1")});
  pqxx::connection conn{db_.pgbouncer_url()};
  for (int i = 0; i < 20; ++i) {
    pqxx::work tx{conn};
    EXPECT_EQ(tx.exec1("SHOW statement_timeout")[0].as<std::string>(), "0");
    EXPECT_EQ(tx.exec1("SHOW search_path")[0].as<std::string>(),
              "\"$user\", public");
  }
}

std::string scalar(const std::string& url, const std::string& sql) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  auto v = tx.exec1(sql)[0];
  return v.is_null() ? "NULL" : v.as<std::string>();
}

// How many relations (tables, indexes, sequences...) each schema holds, the
// system ones left out.
std::map<std::string, int> relations_by_schema(const std::string& url) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  std::map<std::string, int> out;
  for (const auto& r : tx.exec(R"(
        SELECT n.nspname, count(*) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        GROUP BY n.nspname)"))
    out[r[0].as<std::string>()] = r[1].as<int>();
  return out;
}

// The old service's DATABASE_URL=...?schema=tenant1 (app::parse_database_url
// keeps the schema apart): migrations, history, rows and reads all in
// tenant1, through PgBouncer, which refuses or ignores the startup parameter
// that used to carry it.
TEST(PostgresSchema, APrismaSchemaHoldsEverythingThroughPgBouncer) {
  postd::testing::scratch_database db;
  const pg_options tenant{.url = db.pgbouncer_url(), .schema = "tenant1"};
  auto report = migrate(tenant, embedded_migrations());
  EXPECT_EQ(report.applied.size(), embedded_migrations().size());
  EXPECT_EQ(migrate(tenant, embedded_migrations()).already_applied,
            embedded_migrations().size());

  post_store store{tenant};
  std::vector<new_post> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(new_post{new_post_id(),
                             "job-" + std::to_string(i),
                             "post " + std::to_string(i),
                             "author-1",
                             {},
                             {},
                             0});
  EXPECT_EQ(store.insert_posts(batch).inserted, 5u);
  EXPECT_EQ(store.find_post(batch[2].id)->content, "post 2");
  EXPECT_EQ(store.find_post_by_job("job-3", "author-1")->id, batch[3].id);
  EXPECT_EQ(store.posts_by_author("author-1", 10, std::nullopt).size(), 5u);
  store.ping();

  const auto direct = db.direct_url();
  EXPECT_EQ(scalar(direct, R"(SELECT count(*) FROM tenant1."Post")"), "5");
  EXPECT_EQ(scalar(direct, "SELECT count(*) FROM tenant1._prisma_migrations"),
            std::to_string(embedded_migrations().size()));
  auto relations = relations_by_schema(direct);
  EXPECT_EQ(relations.count("public"), 0u) << "something landed in public";
  EXPECT_GT(relations["tenant1"], 5); // "Post", its indexes, the history

  // Without the schema, the same database has no "Post" to read: the
  // store's search_path was its own, not the server connection's.
  post_store plain{db.pgbouncer_url()};
  try {
    plain.find_post(batch[0].id);
    FAIL() << "found a post in public";
  } catch (const postgres_error& e) {
    EXPECT_TRUE(e.connection_lost()); // not migrated there: wait, not fail
    EXPECT_NE(std::string(e.what()).find("42P01"), std::string::npos)
        << e.what();
  }
}

// quote_name: the schema is an identifier, whatever its spelling.
TEST(PostgresSchema, ANameThatNeedsQuoting) {
  postd::testing::scratch_database db;
  const pg_options tenant{.url = db.pgbouncer_url(),
                          .schema = "Tenant \"Two\"; DROP"};
  migrate(tenant, embedded_migrations());
  post_store store{tenant};
  auto p = new_post{new_post_id(), "job-1", "quoted", "author-1", {}, {}, 0};
  EXPECT_EQ(store.insert_posts({p}).inserted, 1u);
  EXPECT_EQ(store.find_post(p.id)->content, "quoted");
  EXPECT_EQ(scalar(db.direct_url(),
                   R"(SELECT count(*) FROM "Tenant ""Two""; DROP"."Post")"),
            "1");
  EXPECT_EQ(relations_by_schema(db.direct_url()).count("public"), 0u);
}

// A role that owns its schema but may not create schemas (the database's
// CREATE privilege) migrates into it: CREATE SCHEMA IF NOT EXISTS alone
// would be refused.
TEST(PostgresSchema, AnExistingSchemaNeedsNoCreatePrivilege) {
  struct scratch_role {
    std::string name = postd::testing::unique_name("postd_role");
    scratch_role() {
      pqxx::connection conn{postd::testing::admin_url()};
      pqxx::nontransaction tx{conn};
      tx.exec("CREATE ROLE " + tx.quote_name(name) + " LOGIN");
    }
    ~scratch_role() {
      try {
        pqxx::connection conn{postd::testing::admin_url()};
        pqxx::nontransaction tx{conn};
        tx.exec("DROP ROLE IF EXISTS " + tx.quote_name(name));
      } catch (const std::exception& e) {
        std::cerr << "cannot drop role " << name << ": " << e.what() << "\n";
      }
    }
  } role; // outlives the database, which holds its objects
  postd::testing::scratch_database db;
  {
    pqxx::connection conn{db.direct_url()};
    pqxx::nontransaction tx{conn};
    tx.exec("CREATE SCHEMA tenant3 AUTHORIZATION " + tx.quote_name(role.name));
  }
  // The same server and database, as that role.
  auto url = db.direct_url();
  auto at = url.find('@');
  url = "postgresql://" + role.name + url.substr(at);

  auto report = migrate(pg_options{.url = url, .schema = "tenant3"},
                        embedded_migrations());
  EXPECT_EQ(report.applied.size(), embedded_migrations().size());
  EXPECT_EQ(scalar(db.direct_url(), R"(SELECT count(*) FROM tenant3."Post")"),
            "0");
  // A missing one it may not create is a clear error.
  try {
    migrate(pg_options{.url = url, .schema = "tenant4"}, embedded_migrations());
    FAIL() << "created a schema without the privilege";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("permission denied"),
              std::string::npos)
        << e.what();
  }
}

} // namespace
