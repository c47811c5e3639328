#include "persistence/redis_connection.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace postd::persistence {

namespace {

// `word` as a whole word in `text` (error replies arrive inside messages
// such as "add_jobs: READONLY You can't write against a read only replica.",
// or inside a script error).
bool has_word(std::string_view text, std::string_view word) {
  auto is_word_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  };
  for (auto p = text.find(word); p != std::string_view::npos;
       p = text.find(word, p + 1)) {
    auto end = p + word.size();
    if ((p == 0 || !is_word_char(text[p - 1])) &&
        (end == text.size() || !is_word_char(text[end])))
      return true;
  }
  return false;
}

} // namespace

bool drops_connection(const redis_error& e, bool client_broken) {
  if (client_broken || dynamic_cast<const redis_reply_error*>(&e) == nullptr)
    return true;
  // NOREPLICAS: a master cut off from its replicas (min-replicas-to-write),
  // as the old one is between a failover and its demotion.
  static constexpr std::array<std::string_view, 5> wrong_server{
      "READONLY", "LOADING", "MASTERDOWN", "UNBLOCKED", "NOREPLICAS"};
  return std::ranges::any_of(wrong_server, [&](std::string_view word) {
    return has_word(e.what(), word);
  });
}

redis_connection::redis_connection(redis_connection_options opts,
                                   std::function<clock::time_point()> now)
    : opts_(std::move(opts)),
      now_(std::move(now)), address_{opts_.redis.host, opts_.redis.port},
      reconnect_(opts_.reconnect_base, opts_.reconnect_cap) {
  opts_.redis.connect_timeout = opts_.timeout;
  opts_.redis.command_timeout = opts_.timeout;
  if (!opts_.sentinel.sentinels.empty()) {
    sentinels_.emplace(opts_.sentinel, opts_.timeout);
    address_ = {}; // known at the first connect
  }
}

std::string redis_connection::describe() const {
  if (sentinels_)
    return "redis master '" + sentinels_->master_name() + "'";
  return "redis " + address_.to_string();
}

redis_client& redis_connection::connected_client() {
  if (client_)
    return *client_;
  if (now_() < next_connect_)
    throw redis_error(describe() + ": unavailable, not reconnecting yet");
  try {
    redis_options target = opts_.redis;
    if (sentinels_) {
      auto master = sentinels_->master();
      if (master != address_)
        log::info("redis master from sentinel",
                  {{"actor", opts_.owner},
                   {"name", sentinels_->master_name()},
                   {"address", master.to_string()},
                   {"before", address_.host.empty() ? std::string("none")
                                                    : address_.to_string()}});
      address_ = master;
      target.host = master.host;
      target.port = master.port;
    }
    redis_client fresh{target};
    if (sentinels_)
      require_master(fresh);
    if (opts_.on_connect)
      opts_.on_connect(fresh);
    client_.emplace(std::move(fresh));
  } catch (const redis_error& e) {
    metrics::process().redis_errors.fetch_add(1, std::memory_order_relaxed);
    next_connect_ = now_() + reconnect_.next();
    report(e, true);
    throw;
  }
  reconnect_.reset();
  ++connections_;
  log::info("redis connected",
            {{"actor", opts_.owner}, {"address", address_.to_string()}});
  return *client_;
}

void redis_connection::succeeded() {
  if (!outage_)
    return;
  outage_ = false;
  log::info("redis available again", {{"actor", opts_.owner}});
}

void redis_connection::failed(const redis_error& e) {
  metrics::process().redis_errors.fetch_add(1, std::memory_order_relaxed);
  bool drop = drops_connection(e, client_ && client_->broken());
  if (drop) {
    // A broken hiredis context is never reused (STYLE.md, errors 4).
    client_.reset();
    next_connect_ = now_() + reconnect_.next();
  }
  report(e, drop);
}

void redis_connection::report(const redis_error& e, bool dropped) {
  // Once per outage; the retries after that only at debug level.
  log::event(outage_ ? spdlog::level::debug : spdlog::level::warn,
             dropped ? "redis unavailable" : "redis error",
             {{"actor", opts_.owner}, {"error", e.what()}});
  outage_ = true;
}

} // namespace postd::persistence
