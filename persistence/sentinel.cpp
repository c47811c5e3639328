#include "persistence/sentinel.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <stdexcept>
#include <utility>

#include <hiredis/hiredis.h>

namespace postd::persistence {

namespace {

std::string element(const redisReply* r, std::size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
    return {};
  const redisReply* e = r->element[i];
  if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)
    return {};
  return {e->str, e->len};
}

} // namespace

sentinel_resolver::sentinel_resolver(sentinel_options opts,
                                     std::chrono::milliseconds timeout)
    : opts_(std::move(opts)), timeout_(timeout) {
  if (opts_.sentinels.empty())
    throw std::invalid_argument(
        "sentinel_resolver needs at least one sentinel");
}

redis_endpoint sentinel_resolver::master() {
  std::string failures;
  for (std::size_t i = 0; i < opts_.sentinels.size(); ++i) {
    const auto& at = opts_.sentinels[i];
    std::string answer;
    try {
      redis_client sentinel{{.host = at.host,
                             .port = at.port,
                             .password = opts_.password,
                             .connect_timeout = timeout_,
                             .command_timeout = timeout_}};
      auto r = sentinel.command(
          {"SENTINEL", "get-master-addr-by-name", opts_.master_name});
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        redis_endpoint found;
        found.host = element(r.get(), 0);
        const auto port = element(r.get(), 1);
        auto [end, ec] =
            std::from_chars(port.data(), port.data() + port.size(), found.port);
        if (!found.host.empty() && ec == std::errc{} &&
            end == port.data() + port.size() && found.port > 0) {
          // The spec: the sentinel that answered is asked first next time.
          const auto first = opts_.sentinels.begin();
          const auto answered = first + static_cast<std::ptrdiff_t>(i);
          std::rotate(first, answered, answered + 1);
          return found;
        }
        answer = "a malformed address";
      } else if (r->type == REDIS_REPLY_NIL) {
        answer = "does not know master '" + opts_.master_name + "'";
      } else if (r->type == REDIS_REPLY_ERROR) {
        answer = reply_string(r.get());
      } else {
        answer = "an unexpected reply";
      }
    } catch (const redis_error& e) {
      answer = e.what();
    }
    failures += (failures.empty() ? "" : "; ") + at.to_string() + ": " + answer;
  }
  throw redis_error("no sentinel gave the address of master '" +
                    opts_.master_name + "' (" + failures + ")");
}

void require_master(redis_client& client) {
  auto r = client.command({"ROLE"});
  if (r->type == REDIS_REPLY_ERROR)
    throw redis_reply_error("ROLE refused: " + reply_string(r.get()));
  auto role = element(r.get(), 0);
  if (role != "master")
    throw redis_reply_error(
        "redis " + client.options().host + ":" +
        std::to_string(client.options().port) + " is a " +
        (role.empty() ? std::string("server of unknown role") : role) +
        ", not the master (a failover in progress)");
}

} // namespace postd::persistence
