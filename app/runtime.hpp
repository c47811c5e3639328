#pragma once

// The wiring: the actor system, the actors and the HTTP server for `serve`.

#include "app/config.hpp"

namespace postd::app {

// Runs the server until SIGINT or SIGTERM, then drains and stops. The caller
// must have blocked SIGINT and SIGTERM in every thread (block_signals()).
// Returns the process exit code.
int serve(const config& c);

// Blocks SIGINT/SIGTERM (to be taken by sigwait) and ignores SIGPIPE; call
// first thing in main, before any thread starts.
void block_signals();

} // namespace postd::app
