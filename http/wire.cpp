#include "http/wire.hpp"

namespace postd::http {

namespace bhttp = boost::beast::http;

namespace {

// A field's values, joined by ", " (RFC 9110 §5.3) when sent more than once.
std::string joined(const beast_request& req, bhttp::field name) {
  std::string out;
  auto [first, last] = req.base().equal_range(name);
  for (auto it = first; it != last; ++it)
    out.append(out.empty() ? "" : ", ").append(it->value());
  return out;
}

} // namespace

api_request to_api_request(beast_request&& req, std::string peer_ip) {
  api_request in;
  in.method = std::string(req.method_string());
  in.target = std::string(req.target());
  in.authorization = std::string(req[bhttp::field::authorization]);
  in.content_type = std::string(req[bhttp::field::content_type]);
  if (auto it = req.find("Idempotency-Key"); it != req.end()) {
    in.has_idempotency_key = true;
    in.idempotency_key = std::string(it->value());
  }
  in.forwarded_for = std::string(req["X-Forwarded-For"]);
  // Two traceparent fields make an invalid one (W3C: a new trace).
  if (req.count("traceparent") == 1)
    in.traceparent = std::string(req["traceparent"]);
  in.prefer = joined(req, bhttp::field::prefer);
  in.peer_ip = std::move(peer_ip);
  if (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head) {
    in.if_none_match = joined(req, bhttp::field::if_none_match);
    in.range = joined(req, bhttp::field::range);
  }
  in.body = std::move(req.body());
  return in;
}

beast_response to_beast_response(api_response r, unsigned version, bool close,
                                 bool head) {
  beast_response res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "postd");
  res.set(bhttp::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers)
    res.set(name, value);
  res.keep_alive(!close);
  if (head) {
    // A 304 has no content: its Content-Length would have to be the 200's.
    if (r.status != 304)
      res.content_length(r.body.size());
  } else {
    res.body() = std::move(r.body);
    res.prepare_payload();
  }
  return res;
}

bool header_block_framed(std::string_view head) {
  for (auto at = head.find('\n'); at != std::string_view::npos;
       at = head.find('\n', at + 1)) {
    if (at == 0 || head[at - 1] != '\r')
      return false;
    if (at + 1 < head.size() && (head[at + 1] == ' ' || head[at + 1] == '\t'))
      return false;
  }
  return true;
}

bool only_chunked_coding(const beast_request& req) {
  namespace bhttp = boost::beast::http;
  auto [first, last] = req.base().equal_range(bhttp::field::transfer_encoding);
  for (auto it = first; it != last; ++it)
    for (const auto& coding : bhttp::ext_list{it->value()})
      if (!boost::beast::iequals(coding.first, "chunked"))
        return false;
  return true;
}

} // namespace postd::http
