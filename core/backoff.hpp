#pragma once

#include <algorithm>
#include <chrono>

namespace postd::core {

// Capped exponential backoff: base, 2*base, 4*base, ... up to cap.
class backoff {
public:
  backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap)
      : base_(base), cap_(cap), next_(base) {}

  std::chrono::milliseconds next() {
    auto current = next_;
    next_ = std::min(cap_, next_ * 2);
    return current;
  }
  void reset() { next_ = base_; }

private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds next_;
};

} // namespace postd::core
