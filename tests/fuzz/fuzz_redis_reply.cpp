// What Redis answers, through postd's reply handling. The first byte picks
// an operation; the rest is what the server sends. Two ways in:
//  - a hiredis redisReader yields the replies; each goes through
//    reply_string / reply_integer / reply_is_error, and each string through
//    the parsers of values that other producers write (job opts, return
//    values) and of INFO text;
//  - a persistence::redis_client whose connection is a socketpair preloaded
//    with the same bytes (this binary supplies hiredis'
//    redisConnectWithTimeout), driven through one bull_queue operation: the
//    reply parsing is private to bull_queue.cpp. A job it finds goes on
//    through core::describe_job, taken jobs' opts through complete_jobs.
// Only redis_error (and redis_reply_error) may come out.
//
// hiredis 0.14 callocs whatever element count a multi-bulk header announces
// ("*888888880"), so both readers refuse arrays of more than
// max_array_elements, as hiredis 1.x's maxelements does; the replies postd
// asks for are far smaller.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.hpp"
#include "core/describe_job.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/redis_client.hpp"

namespace {

using namespace postd;
using namespace postd::persistence;

// The client end of the next connection redis_client makes; -1 once taken.
int next_client_fd = -1;

constexpr int max_array_elements = 4096;

// hiredis' own reply functions, with arrays bounded.
void* (*hiredis_create_array)(const redisReadTask*, int) = nullptr;

void* bounded_array(const redisReadTask* task, int elements) {
  // nullptr: the reader reports out of memory, as a failed calloc would.
  return elements > max_array_elements ? nullptr
                                       : hiredis_create_array(task, elements);
}

redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions fn = [] {
    redisReader* r = redisReaderCreate();
    FUZZ_CHECK(r != nullptr);
    redisReplyObjectFunctions f = *r->fn;
    redisReaderFree(r);
    hiredis_create_array = f.createArray;
    f.createArray = bounded_array;
    return f;
  }();
  return &fn;
}

void through_postd(const redisReply* r, int depth) {
  auto text = reply_string(r);
  (void)reply_is_error(r);
  try {
    (void)reply_integer(r);
  } catch (const redis_reply_error&) {
    // Not an integer: what callers are told.
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    FUZZ_CHECK(text.size() == r->len);
    (void)completed_to_keep(text, 1000);
    (void)core::post_id_of_return_value(text);
    (void)durability_warnings(std::string_view(text));
  }
  if (r->type == REDIS_REPLY_ARRAY && depth < 8)
    for (std::size_t i = 0; i < r->elements; ++i)
      through_postd(r->element[i], depth + 1);
}

void read_replies(std::string_view bytes) {
  redisReader* reader = redisReaderCreateWithFunctions(bounded_functions());
  FUZZ_CHECK(reader != nullptr);
  if (redisReaderFeed(reader, bytes.data(), bytes.size()) == REDIS_OK) {
    for (int n = 0; n < 64; ++n) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK || raw == nullptr)
        break;
      reply_ptr reply(static_cast<redisReply*>(raw));
      through_postd(reply.get(), 0);
    }
  }
  redisReaderFree(reader);
}

void check_lookup(const core::job_lookup& j) {
  using result = core::job_lookup::result;
  FUZZ_CHECK(j.outcome == result::found || j.outcome == result::not_found);
  if (j.outcome == result::not_found)
    FUZZ_CHECK(j.status.empty() && j.post_id.empty());
}

void run(std::uint8_t op, redis_client& redis) {
  const queue_keys keys;
  const std::string token = "token-1";
  const std::chrono::milliseconds lock{30000};
  switch (op % 12) {
  case 0: {
    auto job = get_job(redis, keys, "7");
    core::post row{"p-1", "hi", "author-1", "2024-01-01T00:00:00.000Z", "7"};
    check_lookup(core::describe_job("author-1", job, std::nullopt));
    check_lookup(core::describe_job("author-1", job, row));
    check_lookup(core::describe_job("7", job, row));
    break;
  }
  case 1:
  case 2: {
    // As a writer: take a batch (case 2: blocking for the first job), then
    // complete it with the opts the jobs came with.
    auto taken = take_jobs(redis, keys, 4, token, lock,
                           std::chrono::milliseconds{op % 12 == 2 ? 1 : 0});
    std::vector<completion> done;
    for (const auto& job : taken)
      done.push_back({job.id, R"({"postId":"p"})", job.opts});
    complete_jobs(redis, keys, done, token, 1000);
    break;
  }
  case 3: {
    std::vector<job_request> jobs(2);
    jobs[0].data = R"({"userId":"author-1","content":"hi"})";
    jobs[0].author = "author-1";
    jobs[1] = jobs[0];
    jobs[1].idempotency_key = "key:1";
    auto added = add_jobs(redis, keys, jobs, 1000);
    FUZZ_CHECK(added.size() == jobs.size());
    for (const auto& a : added)
      FUZZ_CHECK(a.status != add_status::queue_full || a.job_id.empty());
    break;
  }
  case 4:
    count_jobs(redis, keys);
    break;
  case 5:
    release_jobs(redis, keys, {"1", "2"}, token);
    break;
  case 6:
    extend_locks(redis, keys, {"1", "2"}, token, lock);
    break;
  case 7:
    complete_jobs(redis, keys,
                  {{"1", "", R"({"removeOnComplete":true})"}, {"2", "{}"}},
                  token, 1000);
    break;
  case 8: {
    auto outcomes =
        fail_jobs(redis, keys, {{"1", "boom"}, {"2", "x"}}, token, 1000, 100);
    FUZZ_CHECK(outcomes.size() == 2);
    break;
  }
  case 9:
    promote_delayed(redis, keys, 0);
    break;
  case 10:
    recover_stalled(redis, keys, 1, lock, 100);
    break;
  default:
    durability_warnings(redis);
    break;
  }
}

// One connection whose server has sent `bytes` and closed its side.
void converse(std::uint8_t op, std::string_view bytes) {
  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  // The whole conversation must fit the socket buffer: nobody reads the
  // commands, and the server's bytes are written before the client runs.
  FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
  while (!bytes.empty()) {
    auto n = write(sv[1], bytes.data(), bytes.size());
    if (n <= 0)
      break;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  shutdown(sv[1], SHUT_WR);
  next_client_fd = sv[0];
  try {
    redis_options opts;
    opts.command_timeout = std::chrono::milliseconds{2000};
    redis_client redis{opts};
    run(op, redis);
  } catch (const redis_error&) {
    // A broken connection or an error reply: the caller's to handle.
  }
  if (next_client_fd >= 0)
    close(next_client_fd); // never connected
  next_client_fd = -1;
  close(sv[1]);
}

} // namespace

// redis_client connects here: to the socketpair converse() prepared.
extern "C" redisContext* redisConnectWithTimeout(const char* /*ip*/,
                                                 int /*port*/,
                                                 const struct timeval /*tv*/) {
  int fd = next_client_fd;
  next_client_fd = -1;
  redisContext* c = fd < 0 ? nullptr : redisConnectFd(fd);
  if (c != nullptr && c->reader != nullptr)
    c->reader->fn = bounded_functions();
  return c;
}

// TCP keep-alive has no meaning on a socketpair.
extern "C" int redisEnableKeepAlive(redisContext* /*c*/) {
  return REDIS_OK;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  read_replies(bytes);
  converse(data[0], bytes);
  return 0;
}
