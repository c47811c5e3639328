#include "core/thread_priority.hpp"

#include <cerrno>
#include <cstring>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace postd::core {

std::string lower_this_thread(int nice) {
  sched_param param{}; // priority 0, as SCHED_BATCH requires
  // 0: the calling thread (a thread id, not the process, under Linux).
  if (::sched_setscheduler(0, SCHED_BATCH, &param) != 0)
    return std::string{"SCHED_BATCH: "} + std::strerror(errno);
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0)
    return std::string{"nice "} + std::to_string(nice) + ": " +
           std::strerror(errno);
  return {};
}

} // namespace postd::core
