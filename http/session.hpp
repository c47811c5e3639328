#pragma once

// One HTTP connection, in the shape of Beast's async server example: one
// strand, do_x/on_x pairs, a timeout before every read, a fresh parser with
// header and body limits for every message. Pipelined requests are read
// only after the previous response is written, so answers stay in order.

#include <atomic>
#include <memory>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/api.hpp"
#include "http/server.hpp"

namespace postd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

class session : public std::enable_shared_from_this<session> {
public:
  session(net::ip::tcp::socket&& socket, api& api,
          const server_settings& settings, std::atomic<int>& in_flight);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void run();

private:
  void do_read();
  void on_header(beast::error_code ec, std::size_t bytes);
  void do_read_body();
  void on_read(beast::error_code ec, std::size_t bytes);
  void dispatch(bhttp::request<bhttp::string_body>&& req);
  void send(api_response r, bool close, bool head);
  void on_write(bool close, beast::error_code ec, std::size_t bytes);
  void do_close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  api& api_;
  const server_settings& settings_;
  std::atomic<int>& in_flight_;
  std::string peer_ip_;
  unsigned version_ = 11;
  bool counted_ = false; // a dispatched request awaits its response
  std::shared_ptr<bhttp::response<bhttp::string_body>> response_;
  // REQUEST_TIMEOUT_MS of the dispatched request; it and the reply race
  // for one answer_claim, so the request is answered once either way.
  net::steady_timer deadline_;
};

} // namespace postd::http
