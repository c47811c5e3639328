#pragma once

// The one place that declares postd's atoms and message types for CAF.

#include <caf/all.hpp>

#include "actors/messages.hpp"

// Messages carrying a reply callback stay inside this process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postd::actors::create_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postd::actors::throttle_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postd::actors::job_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postd::actors::posts_query)

CAF_BEGIN_TYPE_ID_BLOCK(postd, caf::first_custom_type_id)

CAF_ADD_ATOM(postd, postd::actors, flush_atom, "flush")
CAF_ADD_ATOM(postd, postd::actors, work_atom, "work")
CAF_ADD_ATOM(postd, postd::actors, sweep_atom, "sweep")
CAF_ADD_ATOM(postd, postd::actors, tick_atom, "tick")
CAF_ADD_ATOM(postd, postd::actors, restart_atom, "restart")

CAF_END_TYPE_ID_BLOCK(postd)

namespace postd::actors {

// Two implementations: in memory (sweep_atom drops idle keys) and shared in
// Redis (flush_atom sends a batch of hits in one round trip).
using throttle_actor =
    caf::typed_actor<caf::reacts_to<create_request>,
                     caf::reacts_to<throttle_request>,
                     caf::reacts_to<sweep_atom>, caf::reacts_to<flush_atom>>;

// tick_atom: the recovery log's periodic check (see ack_log.hpp).
using enqueue_actor =
    caf::typed_actor<caf::reacts_to<create_request>, caf::reacts_to<flush_atom>,
                     caf::reacts_to<tick_atom>>;

using writer_actor = caf::typed_actor<caf::reacts_to<work_atom>>;

// A supervisor: restart_atom restarts child N (after its backoff), tick_atom
// checks whether an escalation is over.
using supervisor_actor = caf::typed_actor<caf::reacts_to<restart_atom, int>,
                                          caf::reacts_to<tick_atom>>;
using writer_supervisor_actor = supervisor_actor;

using reader_actor =
    caf::typed_actor<caf::reacts_to<job_query>, caf::reacts_to<posts_query>>;

using monitor_actor = caf::typed_actor<caf::reacts_to<tick_atom>>;

} // namespace postd::actors
