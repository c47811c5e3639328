#pragma once

#include <string>

namespace postd::core {

// Makes the calling thread give way to the process's other threads: the
// SCHED_BATCH policy (it never preempts a thread that wakes up) at `nice`
// (1..19; Linux applies both to one thread, not the process). For work
// that can wait behind the latency-sensitive threads (the writers behind
// the HTTP I/O and the enqueue actor). An empty string on success, else
// what failed.
std::string lower_this_thread(int nice);

} // namespace postd::core
