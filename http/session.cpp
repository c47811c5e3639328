#include "http/session.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/reply_once.hpp"
#include "http/errors.hpp"
#include "http/wire.hpp"

namespace postd::http {

session::session(net::ip::tcp::socket&& socket, api& api,
                 const server_settings& settings, std::atomic<int>& in_flight)
    : stream_(std::move(socket)), api_(api), settings_(settings),
      in_flight_(in_flight), deadline_(stream_.get_executor()) {
  metrics::process().connections_open.fetch_add(1, std::memory_order_relaxed);
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = addr.to_v6().to_v4();
    peer_ip_ = addr.to_string();
  }
}

session::~session() {
  metrics::process().connections_open.fetch_sub(1, std::memory_order_relaxed);
}

void session::run() {
  net::dispatch(
      stream_.get_executor(),
      beast::bind_front_handler(&session::do_read, shared_from_this()));
}

void session::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(settings_.max_header_bytes));
  parser_->body_limit(settings_.max_body_bytes);
  // One deadline for the idle wait and the whole request (header, any
  // 100 Continue, body): a client trickling bytes cannot keep it open.
  stream_.expires_after(settings_.read_timeout);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&session::on_header, shared_from_this()));
}

void session::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec)
    return on_read(ec, bytes);
  auto& req = parser_->get();
  if (req.find(bhttp::field::transfer_encoding) != req.end() && !req.chunked())
    return send(error_response(400, "Malformed HTTP request"), true, false);
  if (beast::iequals(req[bhttp::field::expect], "100-continue") &&
      !parser_->is_done()) {
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
        bhttp::status::continue_, req.version());
    bhttp::async_write(
        stream_, *cont,
        [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
          if (ec)
            return self->do_close();
          self->do_read_body();
        });
    return;
  }
  do_read_body();
}

void session::do_read_body() {
  // Usually the body arrived with the header: parse it from the buffer now
  // rather than through another asynchronous read (and its completion).
  if (!parser_->is_done() && buffer_.size() > 0) {
    beast::error_code ec;
    parser_->eager(true);
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec && ec != bhttp::error::need_more)
      return on_read(ec, 0);
  }
  if (parser_->is_done())
    return on_read({}, 0);
  // Still under do_read's deadline, deliberately not renewed here.
  bhttp::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&session::on_read, shared_from_this()));
}

void session::on_read(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec == bhttp::error::end_of_stream ||
      ec == net::error::operation_aborted || ec == beast::error::timeout ||
      ec == net::error::connection_reset || ec == net::error::eof)
    return do_close();
  if (ec == bhttp::error::header_limit)
    return send(error_response(431, "Request header fields too large"), true,
                false);
  if (ec == bhttp::error::body_limit)
    return send(error_response(413, "Request body too large"), true, false);
  if (ec) {
    // Any parse error of Beast's own (bad method, bad chunk, ...) is the
    // client's fault: answer 400 and close, never crash or stall.
    if (ec.category() ==
        bhttp::make_error_code(bhttp::error::bad_method).category())
      return send(error_response(400, "Malformed HTTP request"), true, false);
    return do_close();
  }
  dispatch(parser_->release());
}

void session::dispatch(bhttp::request<bhttp::string_body>&& req) {
  version_ = req.version();
  bool close = !req.keep_alive();
  bool head = req.method() == bhttp::verb::head;
  auto in = to_api_request(std::move(req), peer_ip_);
  bool create = in.method == "POST" &&
                in.target.substr(0, in.target.find('?')) == "/v1/post/create";
  ++in_flight_;
  counted_ = true;

  // One answer, whichever comes first: the API's (possibly from an actor
  // thread: it only posts back to our strand), the fallback when every copy
  // of the reply is dropped unanswered, or the deadline.
  auto claim = std::make_shared<core::answer_claim>();
  auto self = shared_from_this();
  core::reply_once<api_response> respond{
      claim,
      [self, close, head](api_response r) {
        net::post(self->stream_.get_executor(),
                  [self, r = std::move(r), close, head]() mutable {
                    self->send(std::move(r), close, head);
                  });
      },
      [create] {
        metrics::process().requests_dropped.fetch_add(
            1, std::memory_order_relaxed);
        return unanswered_response("request dropped", create);
      }};
  deadline_.expires_after(settings_.request_timeout);
  deadline_.async_wait([self, claim, close, head,
                        create](beast::error_code ec) {
    if (ec || !claim->claim())
      return; // answered in time
    metrics::process().requests_timed_out.fetch_add(1,
                                                    std::memory_order_relaxed);
    self->send(unanswered_response("request timed out", create), close, head);
  });
  api_.handle(std::move(in), std::move(respond));
}

void session::send(api_response r, bool close, bool head) {
  auto res = std::make_shared<beast_response>(
      to_beast_response(std::move(r), version_, close, head));
  response_ = res;
  deadline_.cancel();
  // A fresh deadline: the read's may have run out while the request was
  // handled, and a client that never reads its answer must not hold us.
  stream_.expires_after(settings_.read_timeout);
  bhttp::async_write(
      stream_, *res,
      beast::bind_front_handler(&session::on_write, shared_from_this(), close));
}

void session::on_write(bool close, beast::error_code ec,
                       std::size_t /*bytes*/) {
  if (counted_) {
    counted_ = false;
    --in_flight_;
  }
  response_.reset();
  if (ec) {
    if (ec != net::error::operation_aborted)
      log::debug("write failed", {{"error", ec.message()}});
    return do_close();
  }
  if (close)
    return do_close();
  do_read();
}

void session::do_close() {
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
}

} // namespace postd::http
