// multipart/form-data read as a stream: the same parts whatever the chunk
// sizes, the framing RFC 2046 allows, and clear refusals.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http/multipart.hpp"

using postd::http::multipart_boundary;
using postd::http::multipart_parser;
using postd::http::multipart_part;

namespace {

struct parsed_part {
  multipart_part head;
  std::string data;
  bool ended = false;
};

struct result {
  std::vector<parsed_part> parts;
  bool ok = false;
  std::string error;
};

// Parses `body` fed in chunks of `chunk` bytes (0: all at once).
result parse(const std::string& body, std::size_t chunk = 0,
             const std::string& boundary = "XyZ") {
  result r;
  multipart_parser p{boundary,
                     {[&](const multipart_part& h) {
                        r.parts.push_back({h, {}, false});
                        return true;
                      },
                      [&](std::string_view d) {
                        r.parts.back().data.append(d);
                        return true;
                      },
                      [&] {
                        r.parts.back().ended = true;
                        return true;
                      }}};
  bool fed = true;
  if (chunk == 0)
    fed = p.feed(body);
  else
    for (std::size_t i = 0; i < body.size() && fed; i += chunk)
      fed = p.feed(std::string_view{body}.substr(i, chunk));
  r.ok = fed && p.finish();
  r.error = p.error();
  return r;
}

const std::string two_parts =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"content\"\r\n"
    "\r\n"
    "hello\r\nworld\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"files\"; filename=\"a "
    "\\\"b\\\".png\"\r\n"
    "Content-Type: image/png\r\n"
    "\r\n"
    "\x89PNG\r\n\x1A\n--XyZ is not here\r\n--XyY\r\n-XyZ\r\n--X\r\n"
    "--XyZ--\r\n"
    "epilogue, ignored";

} // namespace

TEST(Multipart, ReadsFieldsAndFiles) {
  auto r = parse(two_parts);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.parts.size(), 2U);
  EXPECT_EQ(r.parts[0].head.name, "content");
  EXPECT_FALSE(r.parts[0].head.has_filename);
  EXPECT_EQ(r.parts[0].data, "hello\r\nworld");
  EXPECT_TRUE(r.parts[0].ended);
  EXPECT_EQ(r.parts[1].head.name, "files");
  EXPECT_TRUE(r.parts[1].head.has_filename);
  EXPECT_EQ(r.parts[1].head.filename, "a \"b\".png");
  EXPECT_EQ(r.parts[1].head.content_type, "image/png");
  // Near-delimiters inside a part are its data (a delimiter followed by
  // anything but CRLF, "--" or padding is not: RFC 2046 forbids it).
  EXPECT_EQ(r.parts[1].data,
            "\x89PNG\r\n\x1A\n--XyZ is not here\r\n--XyY\r\n-XyZ\r\n--X");
  EXPECT_TRUE(r.parts[1].ended);
}

TEST(Multipart, TheSamePartsWhateverTheChunks) {
  auto whole = parse(two_parts);
  for (std::size_t chunk = 1; chunk <= two_parts.size(); ++chunk) {
    auto r = parse(two_parts, chunk);
    ASSERT_TRUE(r.ok) << chunk << ": " << r.error;
    ASSERT_EQ(r.parts.size(), whole.parts.size()) << chunk;
    for (std::size_t i = 0; i < r.parts.size(); ++i)
      EXPECT_EQ(r.parts[i].data, whole.parts[i].data) << chunk;
  }
}

TEST(Multipart, PreambleEmptyPartsAndPadding) {
  auto r = parse("preamble text\r\n--XyZ  \t\r\n"
                 "content-disposition: form-data; name=a\r\n\r\n"
                 "\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
                 "x\r\n--XyZ--");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.parts.size(), 2U);
  EXPECT_EQ(r.parts[0].head.name, "a");
  EXPECT_EQ(r.parts[0].data, "");
  EXPECT_EQ(r.parts[1].data, "x");
}

TEST(Multipart, RefusesMalformedBodies) {
  for (const char* bad : {
           "",            // no boundary at all
           "--XyZ--\r\n", // no part
           "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx", // cut
           "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ",
           "--XyZ\r\n\r\nx\r\n--XyZ--", // no disposition
           "--XyZ\r\nContent-Disposition: attachment\r\n\r\nx\r\n--XyZ--",
           "--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--",
           "--XyZ\r\nContent-Disposition: form-data; "
           "name=\"a\r\n\r\nx\r\n--XyZ--",
           "--XyZjunk\r\nContent-Disposition: form-data; "
           "name=a\r\n\r\nx\r\n--XyZ--",
           // a delimiter inside a part's data (RFC 2046: it must not be)
           "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n"
           "x\r\n--XyZa\r\n--XyZ--",
       }) {
    auto r = parse(bad);
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_FALSE(r.error.empty()) << bad;
  }
}

TEST(Multipart, BoundsHeadersAndParts) {
  std::string big_headers =
      "--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: " +
      std::string(9000, 'h') + "\r\n\r\nx\r\n--XyZ--";
  EXPECT_NE(parse(big_headers).error.find("headers exceed"), std::string::npos);
  std::string many;
  for (int i = 0; i < 65; ++i)
    many += "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n";
  many += "--XyZ--";
  EXPECT_NE(parse(many).error.find("more than 64 parts"), std::string::npos);
}

TEST(Multipart, ACallbackStopsTheParse) {
  multipart_parser p{"XyZ",
                     {[](const multipart_part& h) { return h.name != "files"; },
                      [](std::string_view) { return true; },
                      [] { return true; }}};
  EXPECT_FALSE(p.feed(two_parts));
  EXPECT_TRUE(p.stopped());
  EXPECT_FALSE(p.feed("more")); // ignored from now on
}

TEST(Multipart, FindsTheBoundaryInTheContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=XyZ"), "XyZ");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;boundary=\"a b:c\""),
            "a b:c");
  EXPECT_EQ(multipart_boundary(
                "multipart/form-data; charset=utf-8; boundary=----WebKit12"),
            "----WebKit12");
  for (const char* not_one :
       {"multipart/form-data",
        "multipart/form-data; boundary=", "multipart/mixed; boundary=XyZ",
        "application/json", "multipart/form-data; boundary=\"unterminated",
        "multipart/form-data; boundary=bad\x01char",
        "multipart/form-data; boundary=\"ends-in-space \""})
    EXPECT_EQ(multipart_boundary(not_one), std::nullopt) << not_one;
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" +
                               std::string(71, 'b')),
            std::nullopt);
}
