#pragma once

// A reply that is delivered exactly once. Copies share one answer: the
// first call delivers, later calls are ignored, and when the last copy is
// destroyed unanswered (an actor died with the request in its mailbox, a
// message was dropped) the fallback answer is delivered instead, so the one
// who waits always hears back. Whoever else may answer the same request (a
// deadline) claims it through the shared answer_claim: one of them wins.

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

namespace postd::core {

class answer_claim {
public:
  // True for the first caller only.
  bool claim() noexcept {
    return !taken_.exchange(true, std::memory_order_acq_rel);
  }
  bool taken() const noexcept { return taken_.load(std::memory_order_acquire); }

private:
  std::atomic<bool> taken_{false};
};

template <class T> class reply_once {
public:
  using deliver_fn = std::function<void(T)>;
  using fallback_fn = std::function<T()>;

  reply_once(std::shared_ptr<answer_claim> claim, deliver_fn deliver,
             fallback_fn if_dropped)
      : state_(std::make_shared<state>(std::move(claim), std::move(deliver),
                                       std::move(if_dropped))) {}

  void operator()(T answer) const {
    if (state_->claim->claim())
      state_->deliver(std::move(answer));
  }

private:
  struct state {
    state(std::shared_ptr<answer_claim> c, deliver_fn d, fallback_fn f)
        : claim(std::move(c)), deliver(std::move(d)), if_dropped(std::move(f)) {
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      if (!claim->claim())
        return;
      try {
        deliver(if_dropped());
      } catch (...) { // NOLINT(bugprone-empty-catch): no one left to tell
      }
    }

    std::shared_ptr<answer_claim> claim;
    deliver_fn deliver;
    fallback_fn if_dropped;
  };

  std::shared_ptr<state> state_;
};

} // namespace postd::core
