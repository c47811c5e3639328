// Image attachments end to end: multipart/form-data creates stream their
// files to STORAGE_DIR, the row's images hold their URLs, GET /v1/files/
// serves them back (ETag, Range, 304), and every refusal (401, 415, 413,
// 400, 429) leaves nothing behind. A large upload does not grow the
// server's memory by its size.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>
#include <pqxx/pqxx>

#include "core/hex.hpp"
#include "http/auth.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* secret = "attachments-secret";
constexpr const char* boundary = "----postd-test-7MA4YWxkTrZu0gW";

struct image {
  std::string ext;
  std::string content_type;
  std::string bytes;
};

// An image of `size` bytes: the type's signature, then varied filler.
image make_image(const std::string& ext, std::size_t size, char seed = 'a') {
  static const std::map<std::string, std::pair<std::string, std::string>>
      signatures{
          {"jpg",
           {"image/jpeg", std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF", 10)}},
          {"png",
           {"image/png",
            std::string("\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR", 16)}},
          {"gif", {"image/gif", "GIF89a\x01\x00\x01\x00"}},
          {"webp",
           {"image/webp", std::string("RIFF\x24\x00\x00\x00WEBPVP8 ", 16)}},
      };
  const auto& [type, head] = signatures.at(ext);
  std::string bytes = head;
  bytes.reserve(size);
  for (std::size_t i = 0; bytes.size() < size; ++i)
    bytes.push_back(static_cast<char>(seed + static_cast<char>(i % 23)));
  bytes.resize(size);
  return {ext, type, std::move(bytes)};
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
         out);
  return core::to_hex(
      std::string_view{reinterpret_cast<const char*>(out), sizeof out});
}

struct part {
  std::string name;
  std::string filename; // empty: a field
  std::string content_type;
  std::string bytes;
};

std::string form(const std::vector<part>& parts) {
  std::string body;
  for (const auto& p : parts) {
    body += std::string("--") + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty())
      body += "; filename=\"" + p.filename + "\"";
    body += "\r\n";
    if (!p.content_type.empty())
      body += "Content-Type: " + p.content_type + "\r\n";
    body += "\r\n" + p.bytes + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

part file_part(const image& i) {
  return {"files", "photo." + i.ext, i.content_type, i.bytes};
}

// The server's peak resident memory (VmHWM), in KiB.
long long peak_rss_kib(pid_t pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoll(line.substr(6));
  return -1;
}

// What a storage folder holds (temporary uploads included).
std::vector<std::string> stored(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator{dir, ec})
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct AttachmentsTest : ::testing::Test {
  std::string queue = unique_name("att");
  fs::path storage = service_dir("files");
  scratch_database db;

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(storage, ec);
  }

  env_map env(env_map extra = {}) const {
    auto redis = test_redis();
    env_map e{{"DATABASE_URL", db.pgbouncer_url()},
              {"REDIS_HOST", redis.host},
              {"REDIS_PORT", std::to_string(redis.port)},
              {"JWT_SECRET", secret},
              {"QUEUE_NAME", queue},
              {"WRITERS", "2"},
              {"STORAGE_DIR", storage.string()},
              {"LOG_LEVEL", "info"}};
    for (auto& [k, v] : extra)
      e[k] = v;
    return e;
  }
  void migrate() const {
    auto r = run_postd({"migrate"}, env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static http_result upload(int port, const std::string& body,
                            std::map<std::string, std::string> headers = {}) {
    headers.emplace("Authorization",
                    "Bearer " +
                        http::token_verifier{secret}.issue("author-1", 600s));
    headers.emplace("Content-Type",
                    std::string("multipart/form-data; boundary=") + boundary);
    return http_call(port, "POST", "/v1/post/create", body, headers, 30s);
  }
  std::vector<std::string> images_of(const std::string& content) const {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    auto r = tx.exec_params1(
        R"(SELECT array_to_json(images)::text FROM "Post" WHERE content = $1)",
        content);
    return json::parse(r[0].as<std::string>()).get<std::vector<std::string>>();
  }
};

} // namespace

TEST_F(AttachmentsTest, EachImageTypeIsStoredListedAndServedBack) {
  migrate();
  START_SERVER(server, env());
  for (const auto& ext : {"jpg", "png", "gif", "webp"}) {
    SCOPED_TRACE(ext);
    auto img = make_image(ext, 3000 + 1000 * std::string(ext).size());
    auto content = std::string("a post with a ") + ext;
    auto r = upload(server.port(),
                    form({{"content", "", "", content}, file_part(img)}),
                    {{"Prefer", "wait=5"}});
    ASSERT_EQ(r.status, 201U) << r.body;
    auto name = sha256_hex(img.bytes) + "." + ext;
    auto url = "/v1/files/" + name;
    auto post = json::parse(r.body);
    EXPECT_EQ(post["content"], content);
    EXPECT_EQ(post["images"], json::array({url}));
    EXPECT_EQ(images_of(content), std::vector<std::string>{url});
    // GET /v1/post/:id lists them too.
    auto got = http_call(server.port(), "GET",
                         "/v1/post/" + post["id"].get<std::string>());
    EXPECT_EQ(json::parse(got.body)["images"], json::array({url}));

    auto file = http_call(server.port(), "GET", url);
    ASSERT_EQ(file.status, 200U);
    EXPECT_EQ(file.body, img.bytes);
    EXPECT_EQ(file.headers["content-type"], img.content_type);
    auto etag = sha256_hex(img.bytes);
    etag.insert(etag.begin(), '"');
    etag.push_back('"');
    EXPECT_EQ(file.headers["etag"], etag);
    EXPECT_EQ(file.headers["cache-control"],
              "public, max-age=31536000, immutable");
    auto part =
        http_call(server.port(), "GET", url, {}, {{"Range", "bytes=100-199"}});
    ASSERT_EQ(part.status, 206U);
    EXPECT_EQ(part.body, img.bytes.substr(100, 100));
    EXPECT_EQ(part.headers["content-range"],
              "bytes 100-199/" + std::to_string(img.bytes.size()));
    auto past =
        http_call(server.port(), "GET", url, {}, {{"Range", "bytes=999999-"}});
    EXPECT_EQ(past.status, 416U);
    auto same = http_call(server.port(), "GET", url, {},
                          {{"If-None-Match", file.headers["etag"]}});
    EXPECT_EQ(same.status, 304U);
    EXPECT_TRUE(same.body.empty());
  }
  // Only the four stored files: no temporary upload left behind.
  EXPECT_EQ(stored(storage).size(), 4U);
  EXPECT_EQ(
      http_call(server.port(), "GET", "/v1/files/../../etc/passwd").status,
      404U);
  EXPECT_EQ(http_call(server.port(), "GET",
                      "/v1/files/" + std::string(64, 'a') + ".png")
                .status,
            404U);
}

TEST_F(AttachmentsTest, SeveralFilesKeepTheirOrderAndTheSameImageIsOneFile) {
  migrate();
  START_SERVER(server, env());
  auto a = make_image("png", 5000, 'a');
  auto b = make_image("jpg", 7000, 'b');
  auto r = upload(server.port(),
                  form({file_part(a),
                        {"content", "", "", "two images"},
                        file_part(b),
                        file_part(a)}),
                  {{"Prefer", "wait=5"}});
  ASSERT_EQ(r.status, 201U) << r.body;
  std::vector<std::string> urls{"/v1/files/" + sha256_hex(a.bytes) + ".png",
                                "/v1/files/" + sha256_hex(b.bytes) + ".jpg",
                                "/v1/files/" + sha256_hex(a.bytes) + ".png"};
  EXPECT_EQ(images_of("two images"), urls);
  EXPECT_EQ(stored(storage).size(), 2U);
  // Without Prefer: the usual 202, and the job carries the fileUrls.
  auto plain =
      upload(server.port(),
             form({{"content", "", "", "queued with one"}, file_part(b)}));
  ASSERT_EQ(plain.status, 202U) << plain.body;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  std::vector<std::string> images;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      images = images_of("queued with one");
      break;
    } catch (const pqxx::unexpected_rows&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_EQ(images, std::vector<std::string>{urls[1]});
}

TEST_F(AttachmentsTest, RefusalsLeaveNothingBehind) {
  migrate();
  START_SERVER(server,
               env({{"MAX_FILES", "2"}, {"MAX_FILE_BYTES", "1048576"}}));
  auto png = make_image("png", 2000);
  auto check = [&](const http_result& r, unsigned status,
                   const std::string& message) {
    EXPECT_EQ(r.status, status) << r.body;
    auto body = json::parse(r.body);
    EXPECT_EQ(body["statusCode"], status);
    EXPECT_NE(body["message"].dump().find(message), std::string::npos)
        << r.body;
  };
  // A text file named .png, declared image/png: refused by its bytes.
  check(upload(server.port(), form({{"content", "", "", "text"},
                                    {"files", "notes.png", "image/png",
                                     "just some text here"}})),
        415, "images");
  // A file past MAX_FILE_BYTES: 413 naming the limit.
  auto big = make_image("jpg", 3 << 19);
  check(
      upload(server.port(), form({{"content", "", "", "big"}, file_part(big)})),
      413, "at most 1048576 bytes");
  // A body past what MAX_FILES such files can be: refused by its length.
  auto huge = make_image("jpg", 5 << 20);
  check(upload(server.port(),
               form({{"content", "", "", "huge"}, file_part(huge)})),
        413, "Request body too large: at most");
  // More than MAX_FILES.
  check(upload(server.port(), form({{"content", "", "", "many"},
                                    file_part(png),
                                    file_part(png),
                                    file_part(png)})),
        400, "Too many files");
  // No content (an empty one is refused once the files are stored: see the
  // sweep's test).
  check(upload(server.port(), form({file_part(png)})), 400,
        "content must not be empty");
  // A file under another field name, and a body cut short.
  check(upload(server.port(),
               form({{"content", "", "", "x"},
                     {"avatar", "a.png", "image/png", png.bytes}})),
        400, "Unexpected field");
  auto cut = form({{"content", "", "", "cut"}, file_part(png)});
  check(upload(server.port(), cut.substr(0, cut.size() - 10)), 400,
        "Malformed multipart body");
  // No token: 401 before the body is read.
  auto r =
      http_call(server.port(), "POST", "/v1/post/create",
                form({{"content", "", "", "anon"}, file_part(png)}),
                {{"Content-Type",
                  std::string("multipart/form-data; boundary=") + boundary}});
  EXPECT_EQ(r.status, 401U) << r.body;
  // Nothing was stored, not even a temporary upload: files are committed
  // only once their form is accepted.
  EXPECT_EQ(stored(storage), std::vector<std::string>{});
  // The server goes on: a good upload still works.
  EXPECT_EQ(
      upload(server.port(), form({{"content", "", "", "fine"}, file_part(png)}))
          .status,
      202U);
  EXPECT_EQ(stored(storage).size(), 1U);
  EXPECT_EQ(
      images_of("fine"),
      std::vector<std::string>{"/v1/files/" + sha256_hex(png.bytes) + ".png"});
}

TEST_F(AttachmentsTest, ThrottledBeforeTheBodyIsRead) {
  migrate();
  START_SERVER(server, env({{"THROTTLE_LIMIT", "1"}}));
  auto png = make_image("png", 4000);
  auto body = form({{"content", "", "", "once"}, file_part(png)});
  EXPECT_EQ(upload(server.port(), body).status, 202U);
  auto second = upload(server.port(), body);
  EXPECT_EQ(second.status, 429U) << second.body;
  EXPECT_EQ(second.headers.count("retry-after"), 1U);
}

TEST_F(AttachmentsTest, ALargeUploadDoesNotGrowTheServersMemoryByItsSize) {
  migrate();
  START_SERVER(server, env({{"MAX_FILE_BYTES", std::to_string(64 << 20)},
                            {"MAX_FILES", "1"}}));
  // Warm up the request path, then take the peak as the baseline.
  auto small = make_image("png", 2000);
  ASSERT_EQ(upload(server.port(),
                   form({{"content", "", "", "warm"}, file_part(small)}))
                .status,
            202U);
  auto before = peak_rss_kib(server.pid());
  ASSERT_GT(before, 0);
  auto large = make_image("png", 48 << 20);
  auto r = upload(server.port(),
                  form({{"content", "", "", "large"}, file_part(large)}));
  ASSERT_EQ(r.status, 202U) << r.body;
  auto after = peak_rss_kib(server.pid());
  std::cout << "postd peak RSS " << before << " KiB before, " << after
            << " KiB after a 48 MiB upload\n";
  // 48 MiB went through; the peak grew by a small fraction of it.
  EXPECT_LT(after - before, 12 * 1024)
      << "peak RSS " << before << " KiB -> " << after << " KiB";
  auto name = sha256_hex(large.bytes) + ".png";
  EXPECT_EQ(fs::file_size(storage / name), large.bytes.size());
  // Past the limit: refused without reading it all.
  auto over = make_image("png", (64 << 20) + 1);
  auto refused = upload(server.port(),
                        form({{"content", "", "", "over"}, file_part(over)}));
  EXPECT_EQ(refused.status, 413U) << refused.body;
  EXPECT_LT(peak_rss_kib(server.pid()) - before, 12 * 1024);
}

TEST_F(AttachmentsTest, TheSweepRemovesTheFilesOfRefusedPostsOnly) {
  migrate();
  // Sweeps every 500 ms whatever is 500 ms old and held by no post.
  START_SERVER(server,
               env({{"MAX_FILES", "1"}, {"POSTD_FAULT_SWEEP_MS", "500"}}));
  auto kept = make_image("png", 3000, 'k');
  auto orphan = make_image("gif", 3000, 'o');
  ASSERT_EQ(upload(server.port(),
                   form({{"content", "", "", "kept"}, file_part(kept)}),
                   {{"Prefer", "wait=5"}})
                .status,
            201U);
  // Stored, then the post was refused (an empty content, which only the
  // API's validation sees): an orphan.
  ASSERT_EQ(
      upload(server.port(), form({{"content", "", "", ""}, file_part(orphan)}))
          .status,
      400U);
  auto orphan_name = sha256_hex(orphan.bytes) + ".gif";
  auto kept_name = sha256_hex(kept.bytes) + ".png";
  ASSERT_TRUE(fs::exists(storage / orphan_name));
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (fs::exists(storage / orphan_name) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(fs::exists(storage / orphan_name)) << server.output();
  // The post's file stays, rounds later, and is still served.
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(fs::exists(storage / kept_name));
  EXPECT_EQ(http_call(server.port(), "GET", "/v1/files/" + kept_name).body,
            kept.bytes);
}
