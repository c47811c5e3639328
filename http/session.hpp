#pragma once

// One HTTP connection, in the shape of Beast's async server example: one
// strand, do_x/on_x pairs, a timeout before every read, a fresh parser with
// header and body limits for every message. Pipelined requests are read
// only after the previous response is written, so answers stay in order.

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/reply_once.hpp"
#include "http/api.hpp"
#include "http/server.hpp"

namespace postd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

class session;

// What a server shares with its sessions: the requests in flight and the
// open sessions (to drain them at shutdown). It outlives every session.
class session_registry {
public:
  std::atomic<int> in_flight{0};

  // Starts `s` (registered until it is destroyed).
  void start(const std::shared_ptr<session>& s);
  // Drains every open session (session::drain).
  void drain_all();

private:
  friend class session;
  void remove(const session* s);

  std::mutex mtx_;
  std::unordered_map<const session*, std::weak_ptr<session>> open_;

public:
  // Where uploads are committed (each file's fsync and rename), off the I/O
  // threads: a disk's fsync takes milliseconds that every other connection
  // of an I/O thread would wait. Last: joined before the rest goes.
  net::thread_pool disk{4};
};

class session : public std::enable_shared_from_this<session> {
public:
  session(net::ip::tcp::socket&& socket, api& api,
          const server_settings& settings, session_registry& registry);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void run();
  // The server is shutting down: an idle connection (waiting for a request
  // of which no byte was read) closes now; any other closes after its
  // current answer, which says `Connection: close`. Safe from any thread.
  void drain();

private:
  void do_read();
  void do_read_header();
  void on_header(beast::error_code ec, std::size_t bytes);
  void do_read_body();
  void on_read(beast::error_code ec, std::size_t bytes);
  void dispatch(bhttp::request<bhttp::string_body>&& req);
  // Counts a request in flight and returns the one way to answer it: the
  // API's reply (posted back to this strand), the fallback when every copy
  // of it is dropped, or the deadline (arm_deadline), whichever is first.
  respond_fn answer_once(bool close, bool head, bool create,
                         const std::string& trace);
  // The request unanswered after `d` gets 503 "request timed out".
  void arm_deadline(std::chrono::milliseconds d);

  // A multipart create (api::is_upload): admitted by the API on its header
  // alone, then its body read in chunks into a form_reader, so neither a
  // file nor the whole body is ever held in memory.
  struct upload;
  void start_upload();
  void on_admitted(upload_ticket ticket);
  void read_upload();
  void on_upload_read(beast::error_code ec, std::size_t bytes);
  // The body was read whole; `u`'s form was finished (its files committed)
  // on the disk pool: `finished` says whether it was accepted.
  void on_form_finished(std::unique_ptr<upload> u, bool finished);
  // The upload ends with `r` (a refusal); `unread`: the rest of its body
  // was not read, so the connection closes after the answer.
  void end_upload(api_response r, bool unread);
  void send(api_response r, bool close, bool head);
  void on_write(bool close, beast::error_code ec, std::size_t bytes);
  void do_close();
  // Reads and drops what the client still sends (a lingering close).
  void discard_rest(const std::shared_ptr<std::array<char, 16384>>& to);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  api& api_;
  const server_settings& settings_;
  session_registry& registry_;
  std::string peer_ip_;
  unsigned version_ = 11;
  std::ptrdiff_t header_fields_ = 0; // fields in the header section
  bool counted_ = false;             // a dispatched request awaits its response
  bool draining_ = false; // drain(): no request after the current one
  std::shared_ptr<bhttp::response<bhttp::string_body>> response_;
  // The current request's answer, for its deadline (answer_once).
  struct answering {
    std::shared_ptr<core::answer_claim> claim;
    bool close = false;
    bool head = false;
    bool create = false;
    std::string trace;
  };
  answering answering_;
  std::unique_ptr<upload> upload_;
  // The request's body is not (wholly) read: its answer closes.
  bool body_unread_ = false;
  // The current request's body limit, as its 413 names it.
  std::uint64_t body_limit_ = 0;
  // REQUEST_TIMEOUT_MS of the dispatched request; it and the reply race
  // for one answer_claim, so the request is answered once either way.
  net::steady_timer deadline_;
};

} // namespace postd::http
