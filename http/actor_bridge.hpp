#pragma once

// The backend of the API, made of actors: the only place HTTP code sends
// messages to CAF. Callbacks travel inside the messages; the session's
// callback posts back onto its own strand, so actors never touch Beast.

#include <atomic>
#include <memory>
#include <vector>

#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "http/api.hpp"

namespace postd::http {

class actor_bridge : public backend {
public:
  actor_bridge(actors::throttle_actor throttle,
               std::vector<actors::reader_actor> readers,
               std::shared_ptr<actors::health_board> board)
      : throttle_(std::move(throttle)), readers_(std::move(readers)),
        board_(std::move(board)) {}

  void create(std::string throttle_key, actors::create_post post,
              actors::create_callback done) override {
    caf::anon_send(throttle_, actors::create_request{std::move(throttle_key),
                                                     std::move(post),
                                                     std::move(done),
                                                     {}});
  }

  void throttle(std::string key, actors::throttle_callback done) override {
    caf::anon_send(throttle_,
                   actors::throttle_request{std::move(key), std::move(done)});
  }

  void find_job(std::string author, std::string job_id,
                actors::job_callback done) override {
    caf::anon_send(next_reader(),
                   actors::job_query{std::move(author), std::move(job_id),
                                     std::move(done)});
  }

  void find_posts(actors::posts_query q) override {
    caf::anon_send(next_reader(), std::move(q));
  }

  std::shared_ptr<const actors::health_view> health() const override {
    return board_->view();
  }
  actors::writer_pool_status writers() const override {
    return board_->writers();
  }

private:
  const actors::reader_actor& next_reader() {
    auto i =
        next_reader_.fetch_add(1, std::memory_order_relaxed) % readers_.size();
    return readers_[i];
  }

  actors::throttle_actor throttle_;
  std::vector<actors::reader_actor> readers_;
  std::atomic<std::size_t> next_reader_{0};
  std::shared_ptr<actors::health_board> board_;
};

} // namespace postd::http
