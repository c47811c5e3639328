// GET/HEAD /v1/files/<name>: stored files served with their type, a strong
// ETag, conditional requests and single byte ranges; any other name is 404
// without anything opened.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "http/files.hpp"

namespace fs = std::filesystem;
using postd::http::api_response;
using postd::http::file_request;
using postd::http::serve_file;

namespace {

const std::string digest =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const std::string etag = "\"" + digest + "\"";

// 1000 bytes, every value and NULs among them.
std::string bytes_of_file() {
  std::string s;
  for (int i = 0; i < 1000; ++i)
    s.push_back(static_cast<char>((i * 7) % 256));
  return s;
}
const std::string content = bytes_of_file();
const std::string name = digest + ".png";

struct ServeFile : ::testing::Test {
  fs::path dir =
      fs::temp_directory_path() /
      ("postd-serve-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  ServeFile() {
    fs::create_directories(dir);
    put(name, content);
  }
  ~ServeFile() override { fs::remove_all(dir); }

  void put(const std::string& file, const std::string& bytes) const {
    std::ofstream{dir / file, std::ios::binary} << bytes;
  }
  api_response get(const file_request& req = {}) const {
    return serve_file(dir, name, req);
  }
  api_response ranged(const std::string& range) const {
    file_request req;
    req.range = range;
    return get(req);
  }
  api_response unless(const std::string& if_none_match) const {
    file_request req;
    req.if_none_match = if_none_match;
    return get(req);
  }
};

std::optional<std::string> header(const api_response& r,
                                  const std::string& field) {
  std::optional<std::string> found;
  for (const auto& [key, value] : r.headers)
    if (key == field) {
      EXPECT_FALSE(found) << field << " twice";
      found = value;
    }
  return found;
}

void expect_not_found(const api_response& r, const std::string& file) {
  EXPECT_EQ(r.status, 404U) << file;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body, (nlohmann::json{{"statusCode", 404},
                                  {"message", "File " + file + " not found"},
                                  {"error", "Not Found"}}))
      << file;
  EXPECT_TRUE(r.headers.empty()) << file;
}

void expect_whole(const api_response& r, const std::string& what) {
  EXPECT_EQ(r.status, 200U) << what;
  EXPECT_EQ(r.body, content) << what;
  EXPECT_FALSE(header(r, "Content-Range")) << what;
}

void expect_part(const api_response& r, std::size_t first, std::size_t last,
                 const std::string& what) {
  EXPECT_EQ(r.status, 206U) << what;
  EXPECT_EQ(header(r, "Content-Range"), "bytes " + std::to_string(first) + "-" +
                                            std::to_string(last) + "/1000")
      << what;
  EXPECT_EQ(r.body, content.substr(first, last - first + 1)) << what;
}

void expect_unsatisfiable(const api_response& r, const std::string& what) {
  EXPECT_EQ(r.status, 416U) << what;
  EXPECT_EQ(header(r, "Content-Range"), "bytes */1000") << what;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body.at("statusCode"), 416) << what;
  EXPECT_EQ(body.at("message"), "Range Not Satisfiable") << what;
  EXPECT_EQ(r.content_type, "application/json; charset=utf-8") << what;
  EXPECT_FALSE(header(r, "ETag")) << what; // an error is not the file
  EXPECT_FALSE(header(r, "Cache-Control")) << what;
}

} // namespace

TEST_F(ServeFile, AnswersTheBytesWithTheTypeOfTheirExtension) {
  char digit = 'a';
  for (const auto& [ext, type] : {std::pair{"jpg", "image/jpeg"},
                                  {"png", "image/png"},
                                  {"gif", "image/gif"},
                                  {"webp", "image/webp"}}) {
    const auto file = std::string(64, digit++) + "." + ext;
    const auto bytes = std::string(ext) + '\0' + content;
    put(file, bytes);
    auto r = serve_file(dir, file, {});
    EXPECT_EQ(r.status, 200U) << ext;
    EXPECT_EQ(r.content_type, type);
    EXPECT_EQ(r.body, bytes) << ext;
    EXPECT_EQ(header(r, "ETag"), "\"" + file.substr(0, 64) + "\"");
  }
}

TEST_F(ServeFile, CarriesAStrongETagAndIsCachedForGood) {
  auto r = get();
  expect_whole(r, "plain GET");
  EXPECT_EQ(header(r, "ETag"), etag);
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(r, "Accept-Ranges"), "bytes");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
}

TEST_F(ServeFile, HeadAnswersAsGetAndIgnoresRange) {
  file_request req;
  req.head = true;
  req.range = "bytes=0-9"; // RFC 9110 §14.2: only GET has ranges
  auto r = get(req);
  expect_whole(r, "HEAD");
  EXPECT_EQ(header(r, "ETag"), etag);
  req.if_none_match = etag;
  EXPECT_EQ(get(req).status, 304U);
}

TEST_F(ServeFile, IfNoneMatchNamingItIsNotModified) {
  for (const std::string& field :
       {etag, "\"other\", " + etag, "\"a\",\"b\" ,\t" + etag + ", \"c\"",
        "W/" + etag, "W/\"x\", W/" + etag, std::string("*"), std::string(" * "),
        ", , " + etag + ","}) {
    auto r = unless(field);
    EXPECT_EQ(r.status, 304U) << field;
    EXPECT_EQ(r.body, "") << field;
    EXPECT_EQ(header(r, "ETag"), etag) << field;
    EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable")
        << field;
    // A cache merges a 304's fields into what it stored: the image's type.
    EXPECT_EQ(r.content_type, "image/png") << field;
  }
}

TEST_F(ServeFile, IfNoneMatchNotNamingItIsTheWholeFile) {
  for (const std::string& field :
       {std::string("\"other\""), "\"" + digest.substr(1) + "\"",
        "\"" + digest + "0\"", digest, "\"" + digest, "'" + digest + "'",
        "w/" + etag, "\"a," + digest + "\"", "*, " + etag, "x, " + etag,
        "\"" + digest + ".png\"", std::string("W/"), std::string(", ,")})
    expect_whole(unless(field), field);
}

TEST_F(ServeFile, IfNoneMatchGoesBeforeRange) {
  file_request req;
  req.if_none_match = etag;
  req.range = "bytes=0-9";
  EXPECT_EQ(get(req).status, 304U);
  req.range = "bytes=5000-";
  EXPECT_EQ(get(req).status, 304U);
}

TEST_F(ServeFile, ARangeIsThoseBytesOnly) {
  expect_part(ranged("bytes=0-99"), 0, 99, "a-b");
  expect_part(ranged("bytes=10-10"), 10, 10, "one byte");
  expect_part(ranged("bytes=990-"), 990, 999, "a-");
  expect_part(ranged("bytes=0-"), 0, 999, "0-");
  expect_part(ranged("bytes=-10"), 990, 999, "suffix");
  expect_part(ranged("bytes=-1000"), 0, 999, "suffix of the size");
  expect_part(ranged("BYTES=1-2"), 1, 2, "the unit in capitals");
  expect_part(ranged(" bytes=3-4 , "), 3, 4, "an empty list element");
}

TEST_F(ServeFile, ARangeKeepsTheFileHeaders) {
  auto r = ranged("bytes=0-1");
  EXPECT_EQ(r.content_type, "image/png");
  EXPECT_EQ(header(r, "ETag"), etag);
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(r, "Accept-Ranges"), "bytes");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
}

TEST_F(ServeFile, ARangePastTheEndStopsAtTheEnd) {
  expect_part(ranged("bytes=900-5000"), 900, 999, "end past size");
  expect_part(ranged("bytes=999-1000"), 999, 999, "end one past");
  expect_part(ranged("bytes=-5000"), 0, 999, "suffix past size");
  expect_part(ranged("bytes=0-99999999999999999999"), 0, 999, "huge end");
  expect_part(ranged("bytes=-99999999999999999999999999"), 0, 999,
              "huge suffix");
  // 2^64 and 2^64 + 1, which a wrapping parse reads as 0 and 1.
  expect_part(ranged("bytes=0-18446744073709551616"), 0, 999, "end 2^64");
  expect_part(ranged("bytes=-18446744073709551617"), 0, 999, "suffix 2^64+1");
}

TEST_F(ServeFile, ARangeStartingPastTheEndIsNotSatisfiable) {
  expect_unsatisfiable(ranged("bytes=1000-"), "start = size");
  expect_unsatisfiable(ranged("bytes=1000-2000"), "start = size, with end");
  expect_unsatisfiable(ranged("bytes=5000-6000"), "start past size");
  expect_unsatisfiable(ranged("bytes=-0"), "empty suffix");
  expect_unsatisfiable(ranged("bytes=99999999999999999999-"), "huge start");
  expect_unsatisfiable(ranged("bytes=18446744073709551615-"), "max start");
  expect_unsatisfiable(ranged("bytes=18446744073709551616-"), "start 2^64");
}

TEST_F(ServeFile, ARangeNotUnderstoodIsIgnored) {
  for (const char* range :
       {"",
        " ",
        "bytes=",
        "bytes=-",
        "bytes=5-1",
        "bytes=a-b",
        "bytes=1-b",
        "bytes=0x1-2",
        "bytes=--1",
        "bytes=1--2",
        "bytes=+1-2",
        "bytes=-+1",
        "bytes=1",
        "bytes= ",
        "bytes=,",
        "bytes=0-1,3-4",
        "bytes=0-1, 0-1",
        "bytes=-1,-2",
        "items=0-1",
        "bytes 0-1",
        "bytes:0-1",
        "bytesx=0-1",
        "=0-1",
        "bytes=0-1;x",
        "bytes=1 -2",
        "bytes=0-1\r\nX: y",
        "bytes=0-1, bytes=2-3" /* two Range fields, joined */})
    expect_whole(ranged(range), range);
}

TEST_F(ServeFile, OtherNamesAreNotFoundAndNothingIsOpened) {
  // Each name points at a file that exists: only refusing the name answers
  // 404.
  fs::create_directories(dir / "store");
  put("store/" + std::string(64, 'A') + ".png", content);
  put("store/" + digest + ".txt", content);
  put("store/" + digest.substr(1) + ".png", content);
  put("store/" + digest + ".png.png", content);
  put("store/" + digest, content);
  put("passwd", content);
  for (const std::string& other :
       {"../" + name, std::string("../passwd"), std::string(64, 'A') + ".png",
        digest + ".txt", digest.substr(1) + ".png", digest + ".png.png", digest,
        std::string(""), std::string("."), std::string(".."), "./" + name,
        name + "/", "/" + name, digest + ".PNG",
        digest.substr(0, 63) + "g.png"})
    expect_not_found(serve_file(dir / "store", other, {}), other);
  // A NUL inside a name must not cut it short to a real one.
  expect_not_found(serve_file(dir, std::string(name) + '\0', {}), name + '\0');
}

TEST_F(ServeFile, AMissingFileIsNotFound) {
  const auto missing = std::string(64, '0') + ".jpg";
  expect_not_found(serve_file(dir, missing, {}), missing);
  file_request req;
  req.if_none_match = "*";
  req.range = "bytes=0-1";
  expect_not_found(serve_file(dir, missing, req), missing);
  expect_not_found(serve_file(dir / "nowhere", name, {}), name);
}

TEST_F(ServeFile, SomethingElseUnderAStoredNameIsNotFound) {
  const auto folder = std::string(64, '1') + ".gif";
  fs::create_directories(dir / folder);
  expect_not_found(serve_file(dir, folder, {}), folder);
  // A FIFO would block a plain open until a writer came.
  const auto fifo = std::string(64, '2') + ".gif";
  ASSERT_EQ(::mkfifo((dir / fifo).c_str(), 0600), 0);
  expect_not_found(serve_file(dir, fifo, {}), fifo);
  const auto link = std::string(64, '3') + ".png";
  fs::create_symlink(dir / name, dir / link);
  expect_not_found(serve_file(dir, link, {}), link);
}

TEST_F(ServeFile, AnEmptyFileHasNoRanges) {
  const auto empty = std::string(64, '4') + ".webp";
  put(empty, "");
  auto r = serve_file(dir, empty, {});
  EXPECT_EQ(r.status, 200U);
  EXPECT_EQ(r.body, "");
  file_request req;
  req.range = "bytes=-5";
  r = serve_file(dir, empty, req);
  EXPECT_EQ(r.status, 416U);
  EXPECT_EQ(header(r, "Content-Range"), "bytes */0");
}

TEST_F(ServeFile, AnUnreadableFileIsAnErrorNotAnException) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "root reads any file";
  fs::permissions(dir / name, fs::perms::none);
  auto r = get();
  EXPECT_EQ(r.status, 500U);
  EXPECT_EQ(nlohmann::json::parse(r.body).at("statusCode"), 500);
  EXPECT_EQ(r.body.find(dir.string()), std::string::npos); // no path leaked
}

TEST_F(ServeFile, AFileRemovedMeanwhileIsWholeOrNotFound) {
  // As the store does it: removed, or replaced whole by a rename.
  std::atomic<bool> stop{false};
  std::thread churn{[&] {
    while (!stop) {
      std::error_code ignored;
      fs::remove(dir / name, ignored);
      put(".upload", content);
      fs::rename(dir / ".upload", dir / name, ignored);
    }
  }};
  int whole = 0;
  for (int i = 0; i < 3000; ++i) {
    auto r = get();
    if (r.status == 200U) {
      ++whole;
      ASSERT_EQ(r.body, content);
    } else {
      ASSERT_EQ(r.status, 404U) << r.body;
    }
  }
  stop = true;
  churn.join();
  EXPECT_GT(whole, 0);
}
