// What a session checks on a parsed header before it reads a body.

#include <gtest/gtest.h>

#include "http/wire.hpp"

using namespace postd::http;
namespace bhttp = boost::beast::http;

namespace {

beast_request with_codings(std::initializer_list<const char*> fields) {
  beast_request req{bhttp::verb::post, "/v1/post/create", 11};
  for (const auto* value : fields)
    req.insert(bhttp::field::transfer_encoding, value);
  return req;
}

} // namespace

TEST(Wire, ChunkedAloneOrNoCodingIsUndone) {
  EXPECT_TRUE(only_chunked_coding(with_codings({})));
  EXPECT_TRUE(only_chunked_coding(with_codings({"chunked"})));
  EXPECT_TRUE(only_chunked_coding(with_codings({"Chunked"})));
}

TEST(Wire, AnyOtherCodingIsNotImplemented) {
  EXPECT_FALSE(only_chunked_coding(with_codings({"gzip, chunked"})));
  EXPECT_FALSE(only_chunked_coding(with_codings({"GZIP ,chunked"})));
  EXPECT_FALSE(only_chunked_coding(with_codings({"deflate", "chunked"})));
  EXPECT_FALSE(only_chunked_coding(with_codings({"chunked", "x-custom;q=1"})));
}

TEST(Wire, HeaderBlockLinesEndInCrlfAndAreNeverFolded) {
  EXPECT_TRUE(header_block_framed("POST / HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_FALSE(header_block_framed("POST / HTTP/1.1\nHost: a\r\n"));
  EXPECT_FALSE(header_block_framed("POST / HTTP/1.1\r\nX: a\r\n b\r\n"));
  EXPECT_FALSE(header_block_framed("POST / HTTP/1.1\r\nX: a\r\n\tb\r\n"));
}

// One traceparent field is taken as sent (the session validates it); two
// make none (W3C: a new trace), whatever their values.
TEST(Wire, OneTraceparentFieldIsTakenTwoAreNone) {
  constexpr const char* trace =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  beast_request one{bhttp::verb::get, "/health", 11};
  one.insert("traceparent", trace);
  EXPECT_EQ(to_api_request(std::move(one), "127.0.0.1").traceparent, trace);
  beast_request two{bhttp::verb::get, "/health", 11};
  two.insert("Traceparent", trace);
  two.insert("traceparent", trace);
  EXPECT_EQ(to_api_request(std::move(two), "127.0.0.1").traceparent, "");
  beast_request none{bhttp::verb::get, "/health", 11};
  EXPECT_EQ(to_api_request(std::move(none), "127.0.0.1").traceparent, "");
}
