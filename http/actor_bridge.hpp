#pragma once

// The backend of the API, made of actors: the only place HTTP code sends
// messages to CAF. Callbacks travel inside the messages; the session's
// callback posts back onto its own strand, so actors never touch Beast.
// Actors are found in the directory for each request: while one restarts,
// its requests are answered `unavailable` (503) at once.

#include <atomic>
#include <memory>

#include "actors/directory.hpp"
#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "http/api.hpp"
#include "http/post_waiters.hpp"

namespace postd::http {

class actor_bridge : public backend {
public:
  // `waiters`: the creates waiting for their rows (Prefer: wait), woken by
  // this instance's writers; none (an ingest-only instance): creates do not
  // wait, Prefer: wait is not applied.
  actor_bridge(std::shared_ptr<const actors::directory> actors,
               std::shared_ptr<actors::health_board> board,
               std::shared_ptr<post_waiters> waiters = {})
      : actors_(std::move(actors)), board_(std::move(board)),
        waiters_(std::move(waiters)) {}

  void create(std::string throttle_key, actors::create_post post,
              actors::create_callback done) override {
    auto throttle = actors_->throttle.get();
    if (!throttle)
      return done(actors::create_outcome{});
    caf::anon_send(throttle, actors::create_request{std::move(throttle_key),
                                                    std::move(post),
                                                    std::move(done),
                                                    {}});
  }

  void enqueue(actors::create_post post, core::throttle_decision throttle,
               actors::create_callback done) override {
    auto enqueue = actors_->enqueue.get();
    if (!enqueue)
      return done(actors::create_outcome{
          actors::create_status::unavailable, {}, throttle});
    caf::anon_send(
        enqueue,
        actors::create_request{{}, std::move(post), std::move(done), throttle});
  }

  void throttle(std::string key, actors::throttle_callback done) override {
    auto throttle = actors_->throttle.get();
    if (!throttle)
      return done(std::nullopt);
    caf::anon_send(throttle,
                   actors::throttle_request{std::move(key), std::move(done)});
  }

  void find_job(std::string author, std::string job_id,
                actors::job_callback done) override {
    auto reader = next_reader();
    if (!reader) {
      actors::job_lookup unavailable;
      unavailable.outcome = actors::job_lookup::result::unavailable;
      return done(std::move(unavailable));
    }
    caf::anon_send(reader,
                   actors::job_query{std::move(author), std::move(job_id),
                                     std::move(done)});
  }

  void find_posts(actors::posts_query q) override {
    auto reader = next_reader();
    if (!reader)
      return q.reply(actors::posts_page{});
    caf::anon_send(reader, std::move(q));
  }

  std::shared_ptr<const actors::health_view> health() const override {
    return board_->view();
  }
  actors::writer_pool_status writers() const override {
    return board_->writers();
  }
  actors::supervisor_status services() const override {
    return board_->services();
  }

  bool can_wait() const override { return waiters_ != nullptr; }
  void
  await_post(const std::string& post_id, std::chrono::milliseconds within,
             std::function<void(std::optional<std::string>)> done) override {
    if (!waiters_)
      return done(std::nullopt);
    waiters_->await(post_id, within, std::move(done));
  }
  void cancel_wait(const std::string& post_id) override {
    if (waiters_)
      waiters_->cancel(post_id);
  }

private:
  // The readers take turns; one restarting is skipped. Invalid when all are
  // restarting.
  actors::reader_actor next_reader() {
    const auto& readers = actors_->readers;
    auto first = next_reader_.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < readers.size(); ++i)
      if (auto r = readers[(first + i) % readers.size()].get())
        return r;
    return {};
  }

  std::shared_ptr<const actors::directory> actors_;
  std::atomic<std::size_t> next_reader_{0};
  std::shared_ptr<actors::health_board> board_;
  std::shared_ptr<post_waiters> waiters_;
};

} // namespace postd::http
