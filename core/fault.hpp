#pragma once

// Fault injection for tests (POSTD_FAULT_* knobs, never settings): dice
// that make an actor throw a crash-like exception, one that no retry in
// postd catches, so the actor dies and its supervisor restarts it.

#include <random>
#include <stdexcept>
#include <string>

namespace postd::core {

class fault_injector {
public:
  // `rate`: the chance each strike() throws; 0 (production) never does.
  explicit fault_injector(double rate = 0) : rate_(rate) {}

  // Throws std::runtime_error("injected " + what) with the chance given at
  // construction.
  void strike(const char* what) {
    if (rate_ <= 0 ||
        std::uniform_real_distribution<double>{0, 1}(dice_) >= rate_)
      return;
    throw std::runtime_error(std::string("injected ") + what);
  }

private:
  double rate_;
  std::minstd_rand dice_{std::random_device{}()};
};

} // namespace postd::core
