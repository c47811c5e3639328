#include "http/session.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/reply_once.hpp"
#include "core/trace.hpp"
#include "http/errors.hpp"
#include "http/multipart.hpp"
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
  body_unread_ = false;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(settings_.max_header_bytes));
  // A multipart create may be larger than MAX_BODY_BYTES: the limit is
  // the larger one until the header says which request this is (on_header).
  body_limit_ = std::max<std::uint64_t>(
      settings_.max_body_bytes,
      form_reader::max_body_bytes(api_.limits_for_uploads()));
  parser_->body_limit(body_limit_);
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
  if (api::is_upload(req.method_string(), req.target(),
                     req[bhttp::field::content_type]))
    return start_upload();
  // Any other request: MAX_BODY_BYTES, for a declared length now, for a
  // chunked body as it arrives.
  body_limit_ = settings_.max_body_bytes;
  if (parser_->content_length().value_or(0) > body_limit_)
    return on_read(bhttp::error::body_limit, 0);
  parser_->body_limit(body_limit_);
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
    return send(error_response(413, "Request body too large: at most " +
                                        std::to_string(body_limit_) + " bytes"),
                true, false);
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
  bool create =
      in.method == "POST" &&
      match_route(std::string_view{in.target}.substr(0, in.target.find('?')))
              .id() == route_id::create;
  auto respond = answer_once(close, head, create, in.traceparent);
  // A create that asked to wait for its row (Prefer: wait=N) gets its N
  // seconds on top of the usual deadline.
  auto deadline = settings_.request_timeout;
  if (create)
    if (auto wait = prefer_wait(in.prefer))
      deadline += std::chrono::seconds{*wait};
  arm_deadline(deadline);
  api_.handle(std::move(in), std::move(respond));
}

respond_fn session::answer_once(bool close, bool head, bool create,
                                const std::string& trace) {
  ++registry_.in_flight;
  counted_ = true;
  auto claim = std::make_shared<core::answer_claim>();
  answering_ = {claim, close, head, create, trace};
  auto self = shared_from_this();
  return core::reply_once<api_response>{
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
}

void session::arm_deadline(std::chrono::milliseconds d) {
  deadline_.expires_after(d);
  deadline_.async_wait([self = shared_from_this(),
                        a = answering_](beast::error_code ec) {
    if (ec || !a.claim->claim())
      return; // answered in time
    metrics::process().requests_timed_out.fetch_add(1,
                                                    std::memory_order_relaxed);
    auto r = unanswered_response("request timed out", a.create);
    r.headers.emplace_back("traceparent", a.trace);
    self->send(std::move(r), a.close, a.head);
  });
}

struct session::upload {
  upload(bhttp::request_parser<bhttp::string_body>&& header,
         std::string_view boundary, const api& api, upload_ticket t)
      : parser(std::move(header)),
        form(boundary, api.storage_dir(), api.limits_for_uploads()),
        ticket(std::move(t)) {}

  bhttp::request_parser<bhttp::buffer_body> parser;
  form_reader form;
  upload_ticket ticket;
  // Larger than buffer_ can hold: each read's bytes all fit at once, so
  // buffer_ is emptied every time and the next read has its whole room.
  // Left uninitialised: each read fills what is used of it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
  std::array<char, 131072> chunk;
};

void session::start_upload() {
  auto& req = parser_->get();
  version_ = req.version();
  bool close = !req.keep_alive() || draining_;
  auto head = to_api_request(bhttp::request<bhttp::string_body>{req}, peer_ip_);
  head.traceparent = core::continue_trace(head.traceparent).header();
  auto respond = answer_once(close, false, true, head.traceparent);
  // Until the whole body is read, an answer leaves it unread.
  body_unread_ = true;
  // Timed out before its body was read, the post cannot have been queued.
  answering_.create = false;
  arm_deadline(settings_.request_timeout);
  auto self = shared_from_this();
  api_.begin_upload(
      std::move(head),
      [self](upload_ticket t) {
        net::post(self->stream_.get_executor(),
                  [self, t = std::move(t)]() mutable {
                    self->on_admitted(std::move(t));
                  });
      },
      std::move(respond));
}

void session::on_admitted(upload_ticket ticket) {
  if (answering_.claim->taken())
    return; // the deadline answered first
  // The body's time is the read's (HTTP_READ_TIMEOUT_MS, set by do_read);
  // the request's deadline starts again once it is whole.
  deadline_.cancel();
  auto boundary =
      multipart_boundary(parser_->get()[bhttp::field::content_type]);
  bool expects_continue =
      beast::iequals(parser_->get()[bhttp::field::expect], "100-continue");
  upload_ = std::make_unique<upload>(std::move(*parser_), boundary.value_or(""),
                                     api_, std::move(ticket));
  parser_.reset();
  upload_->parser.body_limit(body_limit_);
  // Beast reads as much as buffer_ has room for without growing it (at
  // least 512 bytes): a buffer sized for a header block would take the
  // upload in reads of ~512 bytes, ~200 system calls per 100 KiB.
  buffer_.reserve(65536);
  if (expects_continue && !upload_->parser.is_done()) {
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
        bhttp::status::continue_, version_);
    bhttp::async_write(
        stream_, *cont,
        [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
          if (ec)
            return self->end_upload(
                error_response(400, "Request body incomplete"), true);
          self->read_upload();
        });
    return;
  }
  read_upload();
}

void session::read_upload() {
  auto& body = upload_->parser.get().body();
  body.data = upload_->chunk.data();
  body.size = upload_->chunk.size();
  bhttp::async_read_some(
      stream_, buffer_, upload_->parser,
      beast::bind_front_handler(&session::on_upload_read, shared_from_this()));
}

void session::on_upload_read(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec == bhttp::error::need_buffer)
    ec = {};
  if (ec == bhttp::error::body_limit)
    return end_upload(error_response(413, "Request body too large: at most " +
                                              std::to_string(body_limit_) +
                                              " bytes"),
                      true);
  if (ec) // the client went away, was too slow, or broke the framing
    return end_upload(error_response(400, "Request body incomplete"), true);
  auto& u = *upload_;
  auto got = u.chunk.size() - u.parser.get().body().size;
  if (!u.form.feed({u.chunk.data(), got}))
    return end_upload(*u.form.refusal(), !u.parser.is_done());
  if (!u.parser.is_done())
    return read_upload();
  body_unread_ = false;
  const auto& req = u.parser.get();
  if (std::distance(req.begin(), req.end()) != header_fields_)
    return end_upload(error_response(400, "Trailer fields are not accepted"),
                      false);
  // The files' fsyncs, off this thread; the session waits for nothing else
  // meanwhile (no read is pending, no deadline armed).
  net::post(registry_.disk,
            [self = shared_from_this(), u = std::move(upload_)]() mutable {
              bool finished = u->form.finish();
              auto strand = self->stream_.get_executor();
              net::post(strand, [self = std::move(self), u = std::move(u),
                                 finished]() mutable {
                self->on_form_finished(std::move(u), finished);
              });
            });
}

void session::on_form_finished(std::unique_ptr<upload> u, bool finished) {
  upload_ = std::move(u);
  if (!finished)
    return end_upload(*upload_->form.refusal(), false);
  answering_.create = true; // from now on it may be queued
  arm_deadline(settings_.request_timeout +
               std::chrono::seconds{upload_->ticket.wait.value_or(0)});
  auto done = std::move(upload_);
  api_.finish_upload(std::move(done->ticket), done->form.form());
}

void session::end_upload(api_response r, bool unread) {
  body_unread_ = unread;
  auto done = std::move(upload_);
  api::refuse_upload(done->ticket, std::move(r));
}

void session::send(api_response r, bool close, bool head) {
  // An answer before the request's end (a refusal of its header or body).
  if (parser_ && !parser_->is_done())
    body_unread_ = true;
  close = close || draining_ || body_unread_;
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
  // Closing a socket with unread bytes resets the connection, and the
  // reset can destroy the answer before the client reads it (a 413 in the
  // middle of an upload): read the rest for a moment first, as nginx's
  // lingering close does.
  if (body_unread_ && !ec) {
    body_unread_ = false;
    stream_.expires_after(std::chrono::seconds{2});
    discard_rest(std::make_shared<std::array<char, 16384>>());
  }
}

void session::discard_rest(const std::shared_ptr<std::array<char, 16384>>& to) {
  stream_.async_read_some(
      net::buffer(*to),
      [self = shared_from_this(), to](beast::error_code ec, std::size_t) {
        if (!ec)
          self->discard_rest(to);
      });
}

} // namespace postd::http
