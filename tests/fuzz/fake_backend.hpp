#pragma once

// A backend for http::api that answers every callback at once, with
// plausible values: what the actors would answer. Which answer (throttled
// or not, queued or full, found or not, healthy or stale) follows `seed`, so
// one input always meets the same answers and a crash reproduces.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "http/api.hpp"

namespace postd::fuzz {

class fake_backend final : public http::backend {
public:
  void reset(std::uint64_t seed) {
    seed_ = seed;
    last_limit.reset();
    last_after.reset();
    auto now = std::chrono::steady_clock::now();
    auto v = std::make_shared<actors::health_view>();
    auto when = [&](int k) {
      return k == 0   ? std::chrono::steady_clock::time_point{}
             : k == 1 ? now - std::chrono::hours{1}
                      : now;
    };
    v->taken_at = when(bits(2) % 3);
    v->database_at = when(bits(2) % 3);
    v->queue = {bits(1) != 0, bits(1) != 0 ? "" : "ECONNREFUSED", 0.25};
    v->database = {bits(1) != 0, "connection \"refused\"\n", 1.5};
    v->counts = {3, 1, 1000, 2, 5, 0};
    if (bits(1) != 0)
      v->replication = {"master", {{"127.0.0.1:6380", "online", 12, 0}}};
    view_ = std::move(v);
    pool_ = {4, static_cast<int>(bits(2)), 7, bits(2) == 0};
  }

  void create(std::string /*throttle_key*/, actors::create_post post,
              actors::create_callback done) override {
    actors::create_outcome o;
    o.status = static_cast<actors::create_status>(bits(3) % 6);
    o.job_id = post.idempotency_key.empty() ? "42" : "17";
    o.throttle = decision();
    done(o);
  }

  void enqueue(actors::create_post post, core::throttle_decision /*d*/,
               actors::create_callback done) override {
    create({}, std::move(post), std::move(done));
  }

  void throttle(std::string /*key*/, actors::throttle_callback done) override {
    done(decision());
  }

  void find_job(std::string author, std::string job_id,
                actors::job_callback done) override {
    actors::job_lookup j;
    j.outcome = static_cast<actors::job_lookup::result>(bits(2) % 3);
    if (j.outcome == actors::job_lookup::result::found) {
      static constexpr const char* states[] = {"waiting", "active", "delayed",
                                               "completed", "failed"};
      j.status = states[bits(3) % 5];
      j.attempts_made = static_cast<int>(bits(2));
      if (j.status == "completed")
        j.post_id = "0b7e3c1a-5d2f-4c1e-9a7b-" + job_id.substr(0, 12);
      if (j.status == "failed")
        j.failed_reason = "author " + author + " \xff\"";
    }
    done(j);
  }

  void find_posts(actors::posts_query q) override {
    last_limit = q.limit;
    last_after = q.after;
    actors::posts_page page;
    page.outcome = static_cast<actors::posts_page::result>(bits(2) % 3);
    if (page.outcome == actors::posts_page::result::found) {
      // A page of q.limit rows (the API asks one more than it shows) or
      // fewer; one post for GET /v1/post/:id.
      std::size_t n = !q.post_id.empty() ? 1
                      : bits(1) != 0     ? q.limit
                                         : q.limit / 2;
      for (std::size_t i = 0; i < n; ++i)
        page.items.push_back(post_at(q, i));
    }
    q.reply(std::move(page));
  }

  std::shared_ptr<const actors::health_view> health() const override {
    return view_;
  }
  actors::writer_pool_status writers() const override { return pool_; }
  actors::supervisor_status services() const override { return {}; }

  // What the last find_posts was asked.
  std::optional<std::size_t> last_limit;
  std::optional<core::post> last_after;

private:
  // The next `n` bits of the seed (it wraps around).
  std::uint64_t bits(int n) {
    auto v = seed_ & ((std::uint64_t{1} << n) - 1);
    seed_ = (seed_ >> n) | (seed_ << (64 - n));
    return v;
  }

  core::throttle_decision decision() {
    core::throttle_decision d{bits(3) != 0, 100, 99, 60, 0};
    if (!d.allowed) {
      d.remaining = 0;
      d.retry_after_s = 42;
    }
    return d;
  }

  // A row as PostgreSQL returns it: a uuid, text, millisecond timestamps,
  // newest first.
  static core::post post_at(const actors::posts_query& q, std::size_t i) {
    char id[37];
    std::snprintf(id, sizeof id, "6f1c2a9e-0d4b-4e7a-8c3f-%012zu", i);
    char at[25];
    std::snprintf(at, sizeof at, "2024-02-29T23:59:%02zu.%03zuZ", 59 - i % 60,
                  i % 1000);
    core::post p;
    p.id = q.post_id.empty() ? id : q.post_id;
    p.content = "post \"" + std::to_string(i) + "\" \xc3\xa9\\";
    p.author_id = q.post_id.empty() ? q.author_id : "author-1";
    p.created_at = at;
    return p;
  }

  std::uint64_t seed_ = 0;
  std::shared_ptr<const actors::health_view> view_ =
      std::make_shared<actors::health_view>();
  actors::writer_pool_status pool_;
};

} // namespace postd::fuzz
