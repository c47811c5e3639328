#include "http/session.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/reply_once.hpp"
#include "core/trace.hpp"
#include "http/errors.hpp"
#include "http/prefer.hpp"
#include "http/routes.hpp"
#include "http/wire.hpp"

namespace postd::http {

void session_registry::start(const std::shared_ptr<session>& s) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    open_.emplace(s.get(), s);
  }
  s->run();
}

void session_registry::drain_all() {
  std::vector<std::shared_ptr<session>> open;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    open.reserve(open_.size());
    for (const auto& [ptr, weak] : open_)
      if (auto s = weak.lock())
        open.push_back(std::move(s));
  }
  for (const auto& s : open)
    s->drain();
}

void session_registry::remove(const session* s) {
  std::lock_guard<std::mutex> guard{mtx_};
  open_.erase(s);
}

session::session(net::ip::tcp::socket&& socket, api& api,
                 const server_settings& settings, session_registry& registry)
    : stream_(std::move(socket)),
      // Bounds what waits unparsed: a header block, or the trailer section
      // Beast buffers whole without applying its header limit.
      buffer_(settings.max_header_bytes + 65536), api_(api),
      settings_(settings), registry_(registry),
      deadline_(stream_.get_executor()) {
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
  registry_.remove(this);
  metrics::process().connections_open.fetch_sub(1, std::memory_order_relaxed);
}

void session::run() {
  net::dispatch(
      stream_.get_executor(),
      beast::bind_front_handler(&session::do_read, shared_from_this()));
}

void session::drain() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    // Between reads nothing is half-parsed: a parser that has seen no byte
    // and an empty buffer mean no request has begun.
    bool idle = !self->counted_ && !self->response_ && self->parser_ &&
                !self->parser_->got_some() && self->buffer_.size() == 0;
    if (idle)
      self->stream_.cancel(); // the pending read ends: on_read closes
  });
}

void session::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(settings_.max_header_bytes));
  parser_->body_limit(settings_.max_body_bytes);
  // One deadline for the idle wait and the whole request (header, any
  // 100 Continue, body): a client trickling bytes cannot keep it open.
  stream_.expires_after(settings_.read_timeout);
  do_read_header();
}

// The header block is checked as raw bytes before Beast parses it: Beast
// joins obs-folded lines with a space (RFC 9112 §5.2 allows it, but front
// ends differ there: a smuggling risk) and, when the block arrives in
// pieces, waits for a CRLF CRLF that bare LF line ends never bring (§2.2).
void session::do_read_header() {
  std::string_view raw{static_cast<const char*>(buffer_.data().data()),
                       buffer_.size()};
  auto end = raw.find("\r\n\r\n");
  if (!header_block_framed(
          raw.substr(0, end == std::string_view::npos ? raw.size() : end + 2)))
    return send(error_response(400, "Malformed HTTP request"), true, false);
  if (end != std::string_view::npos) {
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    return on_header(ec, 0);
  }
  if (raw.size() >= settings_.max_header_bytes)
    return on_read(bhttp::error::header_limit, 0);
  stream_.async_read_some(
      buffer_.prepare(beast::read_size(buffer_, 65536)),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->buffer_.commit(n);
        if (ec == net::error::eof)
          ec = self->buffer_.size() == 0 ? bhttp::error::end_of_stream
                                         : bhttp::error::partial_message;
        if (ec)
          return self->on_read(ec, n);
        self->do_read_header();
      });
}

void session::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec)
    return on_read(ec, bytes);
  auto& req = parser_->get();
  // The parser's framing, not message::chunked() (the last coding only):
  // "chunked, chunked" is bodiless to Beast, chunked to a front end.
  if (req.find(bhttp::field::transfer_encoding) != req.end() &&
      !parser_->chunked())
    return send(error_response(400, "Malformed HTTP request"), true, false);
  // Framed by chunked, but under a coding postd cannot undo (gzip, ...):
  // RFC 9112 §6.1 answers 501, and the connection's framing is still sound
  // but the body is unread, so it closes.
  if (!only_chunked_coding(req))
    return send(error_response(501, "Transfer-Encoding not implemented"), true,
                false);
  header_fields_ = std::distance(req.begin(), req.end());
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
  if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
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
  // Beast merges trailer fields into the header section; RFC 9110 §6.5.1
  // forbids that for fields like Authorization, and postd uses none.
  const auto& req = parser_->get();
  if (std::distance(req.begin(), req.end()) != header_fields_)
    return send(error_response(400, "Trailer fields are not accepted"), true,
                false);
  dispatch(parser_->release());
}

void session::dispatch(bhttp::request<bhttp::string_body>&& req) {
  version_ = req.version();
  bool close = !req.keep_alive() || draining_;
  bool head = req.method() == bhttp::verb::head;
  auto in = to_api_request(std::move(req), peer_ip_);
  // postd's span of this request: every answer to it (the deadline's too)
  // returns it, and the API puts it in the job and its log lines.
  in.traceparent = core::continue_trace(in.traceparent).header();
  const auto trace = in.traceparent;
  bool create =
      in.method == "POST" &&
      match_route(std::string_view{in.target}.substr(0, in.target.find('?')))
              .id() == route_id::create;
  ++registry_.in_flight;
  counted_ = true;

  // One answer, whichever comes first: the API's (possibly from an actor
  // thread: it only posts back to our strand), the fallback when every copy
  // of the reply is dropped unanswered, or the deadline.
  auto claim = std::make_shared<core::answer_claim>();
  auto self = shared_from_this();
  core::reply_once<api_response> respond{
      claim,
      [self, close, head, trace](api_response r) {
        r.headers.emplace_back("traceparent", trace);
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
  // A create that asked to wait for its row (Prefer: wait=N) gets its N
  // seconds on top of the usual deadline.
  auto deadline = settings_.request_timeout;
  if (create)
    if (auto wait = prefer_wait(in.prefer))
      deadline += std::chrono::seconds{*wait};
  deadline_.expires_after(deadline);
  deadline_.async_wait([self, claim, close, head, create,
                        trace](beast::error_code ec) {
    if (ec || !claim->claim())
      return; // answered in time
    metrics::process().requests_timed_out.fetch_add(1,
                                                    std::memory_order_relaxed);
    auto r = unanswered_response("request timed out", create);
    r.headers.emplace_back("traceparent", trace);
    self->send(std::move(r), close, head);
  });
  api_.handle(std::move(in), std::move(respond));
}

void session::send(api_response r, bool close, bool head) {
  close = close || draining_;
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
    --registry_.in_flight;
  }
  response_.reset();
  if (ec) {
    if (ec != net::error::operation_aborted)
      log::debug("write failed", {{"error", ec.message()}});
    return do_close();
  }
  if (close || draining_)
    return do_close();
  do_read();
}

void session::do_close() {
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
}

} // namespace postd::http
