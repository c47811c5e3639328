#pragma once

// The batching of the actors that talk to Redis: requests collect while a
// round trip is under way, and the next round trip takes all of them (up to
// a cap). The flush message is queued behind the requests already in the
// mailbox, so no timer is involved: one request alone goes out at once,
// and under load every round trip carries many.

#include <cstddef>
#include <iterator>
#include <vector>

namespace postd::core {

template <class T> class batch_queue {
public:
  // True when the caller must schedule a flush (none is pending yet).
  bool push(T item) {
    pending_.push_back(std::move(item));
    if (flush_scheduled_)
      return false;
    flush_scheduled_ = true;
    return true;
  }

  // The next batch, at most `max` items, oldest first.
  std::vector<T> take(std::size_t max) {
    flush_scheduled_ = false;
    std::vector<T> batch;
    if (pending_.size() <= max) {
      batch.swap(pending_);
      return batch;
    }
    auto split = pending_.begin() + static_cast<std::ptrdiff_t>(max);
    batch.assign(std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(split));
    pending_.erase(pending_.begin(), split);
    return batch;
  }

  // After a flush: true when items are left and the caller must schedule
  // another flush.
  bool reschedule() {
    if (pending_.empty() || flush_scheduled_)
      return false;
    flush_scheduled_ = true;
    return true;
  }

  std::size_t size() const { return pending_.size(); }

private:
  std::vector<T> pending_;
  bool flush_scheduled_ = false;
};

} // namespace postd::core
