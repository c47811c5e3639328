#pragma once

// A load of creates for the fault and failover tests, and the promise they
// check once it is over: every post answered 202 is exactly one row.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/server_process.hpp"

namespace postd::testing {

// The JWT secret the load signs its tokens with (postd's JWT_SECRET).
inline constexpr const char* load_secret = "fault-secret";

// Client threads posting creates to `port` until `target` were answered
// 202 (or the deadline passes), each post with a content and an
// Idempotency-Key of its own, recording every acknowledged content and its
// jobId. A post not answered 202 is sent again, with the same key, until it
// is: as a careful client does, so a lost answer never makes a second post.
class load {
public:
  // `pace`: a pause after each acknowledged post, to spread a load in time.
  load(int port, int target, int threads = 4,
       std::chrono::milliseconds pace = {})
      : port_(port), target_(target), pace_(pace) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, t] { run(t); });
  }
  ~load() { join(); }
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void set_port(int port) { port_ = port; }
  // Ends the load early: each client stops after its current post.
  void stop() { stopped_ = true; }
  int target() const { return target_; }
  int acked() const { return acked_count_; }
  // Blocks until `n` creates were acknowledged (or the timeout passes).
  bool wait_acked(int n, std::chrono::milliseconds timeout) {
    return eventually([&] { return acked_count_ >= n; }, timeout);
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }
  // content -> jobId of every create answered 202.
  std::map<std::string, std::string> acked_posts() const {
    std::lock_guard lock{mu_};
    return acked_;
  }
  // Posts given up unacknowledged (the load ended) although one of their
  // sends may have queued them: its bytes went out and the answer was lost
  // (connection reset, no answer in time) or was a 503. Refused connections
  // queue nothing and do not count.
  int maybe_queued() const {
    std::lock_guard lock{mu_};
    return static_cast<int>(abandoned_maybe_queued_);
  }
  // Sends that got no HTTP answer (refused, reset, timed out).
  int unanswered() const { return unanswered_; }
  // When the first create after `t` was answered 202 (nullopt: none was).
  std::optional<std::chrono::steady_clock::time_point>
  first_ack_after(std::chrono::steady_clock::time_point t) const {
    std::lock_guard lock{mu_};
    auto it = std::upper_bound(ack_times_.begin(), ack_times_.end(), t);
    if (it == ack_times_.end())
      return std::nullopt;
    return *it;
  }
  std::map<unsigned, int> statuses() const {
    std::lock_guard lock{mu_};
    return statuses_;
  }
  std::string summary() const {
    std::lock_guard lock{mu_};
    std::string s = "acked " + std::to_string(acked_.size()) + ", unanswered " +
                    std::to_string(unanswered_.load()) +
                    ", given up maybe queued " +
                    std::to_string(abandoned_maybe_queued_);
    for (const auto& [status, n] : statuses_)
      s += ", " + std::to_string(status) + ": " + std::to_string(n);
    return s;
  }

private:
  void run(int t) {
    const std::string token = http::token_verifier{load_secret}.issue(
        "user" + std::to_string(t), std::chrono::seconds{600});
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds{60};
    int i = 0;
    bool maybe_queued = false; // by an earlier send of post i
    while (!stopped_ && acked_count_ < target_ &&
           std::chrono::steady_clock::now() < deadline) {
      const std::string content =
          "post " + std::to_string(t) + "/" + std::to_string(i);
      try {
        auto r = http_call(port_, "POST", "/v1/post/create",
                           nlohmann::json{{"content", content}}.dump(),
                           {{"Authorization", "Bearer " + token},
                            {"Content-Type", "application/json"},
                            {"Idempotency-Key", "key " + content}},
                           std::chrono::seconds{5});
        std::lock_guard lock{mu_};
        ++statuses_[r.status];
        if (r.status == 202) {
          auto id = nlohmann::json::parse(r.body)["jobId"].get<std::string>();
          if (!job_ids_.insert(id).second)
            duplicate_ack_ = id;
          acked_.emplace(content, id);
          ack_times_.push_back(std::chrono::steady_clock::now());
          ++acked_count_;
          ++i;
          maybe_queued = false;
          if (pace_.count() > 0)
            std::this_thread::sleep_for(pace_);
          continue;
        }
        maybe_queued = maybe_queued || r.status == 503;
      } catch (const boost::system::system_error& e) {
        ++unanswered_;
        // Reset or closed after the request went out: maybe queued.
        maybe_queued =
            maybe_queued || e.code() != boost::asio::error::connection_refused;
      } catch (const std::runtime_error&) {
        ++unanswered_; // no whole answer in time
        maybe_queued = true;
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds{20}); // not acknowledged: do not spin
    }
    std::lock_guard lock{mu_};
    if (maybe_queued)
      ++abandoned_maybe_queued_;
  }

  std::atomic<int> port_;
  const int target_;
  const std::chrono::milliseconds pace_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::set<std::string> job_ids_;
  std::vector<std::chrono::steady_clock::time_point> ack_times_; // in order
  std::map<unsigned, int> statuses_;
  std::size_t abandoned_maybe_queued_ = 0;
  std::atomic<int> acked_count_{0};
  std::atomic<int> unanswered_{0};
  std::atomic<bool> stopped_{false};

public:
  // A jobId answered 202 for two posts: impossible while Redis keeps its
  // state.
  std::string duplicate_ack_;
};

struct bull_counts {
  long long wait = 0, active = 0, delayed = 0, failed = 0, completed = 0,
            paused = 0;
  std::string str() const {
    return "wait " + std::to_string(wait) + ", active " +
           std::to_string(active) + ", delayed " + std::to_string(delayed) +
           ", paused " + std::to_string(paused) + ", failed " +
           std::to_string(failed) + ", completed " + std::to_string(completed);
  }
};

// One snapshot (MULTI/EXEC): counted one by one, a job moving from active
// back to wait between two reads would be missed by both.
inline bull_counts queue_counts(const persistence::redis_options& redis,
                                const std::string& queue) {
  persistence::redis_client r{redis};
  const std::string k = "bull:" + queue + ":";
  auto replies = r.pipeline({{"MULTI"},
                             {"LLEN", k + "wait"},
                             {"LLEN", k + "active"},
                             {"LLEN", k + "paused"},
                             {"ZCARD", k + "delayed"},
                             {"ZCARD", k + "failed"},
                             {"ZCARD", k + "completed"},
                             {"EXEC"}});
  const redisReply* exec = replies.back().get();
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 6)
    throw std::runtime_error("queue counts: MULTI/EXEC failed");
  auto n = [&](std::size_t i) { return exec->element[i]->integer; };
  bull_counts c;
  c.wait = n(0);
  c.active = n(1);
  c.paused = n(2);
  c.delayed = n(3);
  c.failed = n(4);
  c.completed = n(5);
  return c;
}

inline env_map fault_env(env_map e) {
  e["THROTTLE_LIMIT"] = "1000000"; // a load from one IP, not a rate test
  e["KEEP_COMPLETED"] = "100000";  // completed stays countable
  return e;
}

// The fault API (FAULTS=on) with the tests' admin token.
inline constexpr const char* test_admin_token = "postd-tests-admin-token";
inline env_map with_fault_api(env_map e) {
  e["FAULTS"] = "on";
  e["ADMIN_TOKEN"] = test_admin_token;
  return e;
}

// PUT /admin/faults with `json`; throws unless postd answers 200.
inline std::string put_faults(int port, const std::string& json) {
  auto r =
      http_call(port, "PUT", "/admin/faults", json,
                {{"Authorization", std::string("Bearer ") + test_admin_token},
                 {"Content-Type", "application/json"}});
  if (r.status != 200)
    throw std::runtime_error("PUT /admin/faults " + json + ": " +
                             std::to_string(r.status) + " " + r.body);
  return r.body;
}

// content -> (rows with that content, one of their jobIds).
inline std::map<std::string, std::pair<long long, std::string>>
rows_by_content(pqxx::connection& conn) {
  pqxx::work tx{conn};
  std::map<std::string, std::pair<long long, std::string>> out;
  for (const auto& r : tx.exec(R"(SELECT content, count(*), min("jobId")
                                   FROM "Post" GROUP BY content)"))
    out[r[0].as<std::string>()] = {r[1].as<long long>(),
                                   r[2].as<std::string>()};
  return out;
}

// The guarantee, per post (each create has a content of its own): once the
// queue is drained, every acknowledged post is exactly one row carrying its
// jobId, nothing is active or failed; rows for posts nobody was answered
// 202 for only as many as the load gave up while they may have been queued
// (none, unless it ended mid-outage), and none twice.
inline void expect_exactly_once(
    const std::string& db_url, const persistence::redis_options& redis,
    const std::string& queue, const load& l, const server_process& server,
    std::chrono::milliseconds drain = std::chrono::seconds{25}) {
  const auto acked = l.acked_posts();
  EXPECT_EQ(l.duplicate_ack_, "") << "one jobId answered 202 twice";
  pqxx::connection conn{db_url};
  auto rows = [&] {
    pqxx::work tx{conn};
    return tx.exec1("SELECT count(*) FROM \"Post\"")[0].as<long long>();
  };
  bool drained = eventually(
      [&] {
        auto c = queue_counts(redis, queue);
        return c.wait + c.active + c.delayed + c.paused == 0 &&
               rows() >= static_cast<long long>(acked.size());
      },
      drain);
  auto c = queue_counts(redis, queue);
  EXPECT_TRUE(drained) << c.str() << "; rows " << rows() << ", " << l.summary()
                       << "\n"
                       << server.output();
  const auto stored = rows_by_content(conn);
  std::vector<std::string> lost, doubled, wrong_job, extra;
  for (const auto& [content, job_id] : acked) {
    auto it = stored.find(content);
    if (it == stored.end())
      lost.push_back(content);
    else if (it->second.second != job_id)
      wrong_job.push_back(content);
  }
  for (const auto& [content, row] : stored) {
    if (row.first > 1)
      doubled.push_back(content);
    if (!acked.contains(content))
      extra.push_back(content);
  }
  EXPECT_TRUE(lost.empty())
      << lost.size() << " acknowledged post(s) without "
      << "a row, e.g. " << lost.front() << "; " << c.str();
  EXPECT_TRUE(doubled.empty()) << doubled.size() << " post(s) stored more "
                               << "than once, e.g. " << doubled.front();
  EXPECT_TRUE(wrong_job.empty())
      << wrong_job.size() << " row(s) carry another jobId than the 202 "
      << "gave, e.g. " << wrong_job.front();
  const auto may_exist = static_cast<std::size_t>(l.maybe_queued());
  EXPECT_LE(extra.size(), may_exist)
      << "rows for posts nobody was answered 202 for, beyond the " << may_exist
      << " requests that may have been queued";
  EXPECT_EQ(c.active, 0) << c.str();
  EXPECT_EQ(c.failed, 0) << c.str();
  std::cout << "[ fault    ] " << l.summary() << "; rows " << stored.size()
            << " (" << extra.size() << " unacknowledged); " << c.str()
            << std::endl;
}

// A fault the clients must not see: every create was answered, 202.
inline void expect_every_answer_was_202(const load& l) {
  EXPECT_EQ(l.unanswered(), 0) << l.summary();
  auto statuses = l.statuses();
  EXPECT_EQ(statuses.size(), 1u) << l.summary();
  EXPECT_EQ(statuses[202], l.acked()) << l.summary();
}

} // namespace postd::testing
