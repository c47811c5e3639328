#pragma once

// The fixture most actor tests build on: the fake services an actor under
// test is handed (states the test owns, reads and breaks), and create
// requests whose answers the test collects.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actor_fixture.hpp"
#include "actors/messages.hpp"
#include "fakes.hpp"

namespace postd::testing {

struct services_fixture : actor_fixture {
  std::shared_ptr<fake_queue_state> queue =
      std::make_shared<fake_queue_state>();
  std::shared_ptr<fake_database> db = std::make_shared<fake_database>();
  // The answers to the requests made by create(), in the order they came.
  std::shared_ptr<std::vector<actors::create_outcome>> outcomes =
      std::make_shared<std::vector<actors::create_outcome>>();

  // A create whose answer is appended to `outcomes` (the callback shares the
  // list: it may run after the request was copied or the actor is gone).
  actors::create_request create(std::string throttle_key,
                                actors::create_post post = {"alice", "hello",
                                                            ""}) const {
    auto out = outcomes;
    actors::create_request r;
    r.throttle_key = std::move(throttle_key);
    r.post = std::move(post);
    r.reply = [out](actors::create_outcome o) { out->push_back(std::move(o)); };
    return r;
  }
};

} // namespace postd::testing
