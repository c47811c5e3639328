#include "http/post_waiters.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace postd::http {

namespace net = boost::asio;

struct post_waiters::waiter {
  waiter(net::io_context& io, std::string id, done_fn fn)
      : timer(io), post_id(std::move(id)), done(std::move(fn)) {}
  net::steady_timer timer;
  std::string post_id;
  done_fn done;
};

post_waiters::post_waiters()
    : work_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

post_waiters::~post_waiters() {
  stop();
}

void post_waiters::stop() {
  std::vector<std::shared_ptr<waiter>> all;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    stopped_ = true;
    for (auto& [id, w] : waiting_)
      all.push_back(w);
  }
  net::post(io_, [this, all] {
    for (const auto& w : all) {
      w->timer.cancel();
      finish(w, std::nullopt);
    }
  });
  work_.reset(); // run() returns once the cancelled timers' handlers ran
  thread_.join();
}

void post_waiters::await(const std::string& post_id,
                         std::chrono::milliseconds within, done_fn done) {
  auto w = std::make_shared<waiter>(io_, post_id, std::move(done));
  {
    std::unique_lock<std::mutex> guard{mtx_};
    if (stopped_) {
      guard.unlock();
      return w->done(std::nullopt);
    }
    waiting_.emplace(post_id, w);
  }
  // The timer is only touched on this object's thread (persisted() cancels
  // it there too).
  net::post(io_, [this, w, within] {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopped_) // stop() ran first: its sweep may not have seen us
        return;
    }
    w->timer.expires_after(within);
    w->timer.async_wait([this, w](const boost::system::error_code& ec) {
      if (!ec)
        finish(w, std::nullopt);
    });
  });
}

void post_waiters::persisted(const std::vector<core::completion>& done) {
  std::vector<std::pair<std::shared_ptr<waiter>, std::string>> woken;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (waiting_.empty())
      return;
    for (const auto& c : done) {
      auto [first, last] = waiting_.equal_range(c.post_id);
      for (auto it = first; it != last; ++it)
        woken.emplace_back(it->second, c.row_id);
    }
  }
  for (auto& [w, row_id] : woken)
    net::post(io_, [this, w = w, row_id = std::move(row_id)]() mutable {
      w->timer.cancel();
      finish(w, std::move(row_id));
    });
}

void post_waiters::cancel(const std::string& post_id) {
  std::vector<std::shared_ptr<waiter>> dropped;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto [first, last] = waiting_.equal_range(post_id);
    for (auto it = first; it != last; ++it)
      dropped.push_back(it->second);
    waiting_.erase(first, last);
  }
  for (auto& w : dropped)
    net::post(io_, [w] { w->timer.cancel(); });
}

std::size_t post_waiters::waiting() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return waiting_.size();
}

void post_waiters::finish(const std::shared_ptr<waiter>& w,
                          std::optional<std::string> id) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto [first, last] = waiting_.equal_range(w->post_id);
    auto it = first;
    while (it != last && it->second != w)
      ++it;
    if (it == last)
      return; // already woken
    waiting_.erase(it);
  }
  w->done(std::move(id));
}

} // namespace postd::http
