#pragma once

// Between Beast's messages and the API's plain request and response: what a
// session does with the bytes it parsed and the answer it writes (and what
// the HTTP fuzz target drives without a socket).

#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "http/api_types.hpp"

namespace postd::http {

using beast_request =
    boost::beast::http::request<boost::beast::http::string_body>;
using beast_response =
    boost::beast::http::response<boost::beast::http::string_body>;

// The API's view of a parsed request from `peer_ip`; takes the body.
api_request to_api_request(beast_request&& req, std::string peer_ip);

// False when `head` (the header block up to its last CRLF, or as much of it
// as arrived) ends a line with a bare LF (RFC 9112 §2.2) or continues one
// with obs-fold, a line starting with SP or HTAB (§5.2): both refused.
bool header_block_framed(std::string_view head);

// False when a Transfer-Encoding field of `req` names a coding other than
// chunked (gzip, deflate, compress, ...): postd undoes none (501). Without
// the field, or with chunked alone, true.
bool only_chunked_coding(const beast_request& req);

// The response written for `r` in HTTP/`version` (10 or 11): postd's Server
// header, Connection by `close`, and for HEAD the length without the body.
beast_response to_beast_response(api_response r, unsigned version, bool close,
                                 bool head);

} // namespace postd::http
