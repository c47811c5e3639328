// The form of a multipart create read as it arrives: content and files
// whatever the chunking, and each refusal as soon as the bytes show it.

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "http/upload.hpp"

using namespace postd::http;
namespace fs = std::filesystem;

namespace {

const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + "pixels-pixels";
const std::string gif = "GIF89a-and-then-some";

std::string part(const std::string& name, const std::string& filename,
                 const std::string& bytes) {
  std::string p =
      "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"";
  if (!filename.empty())
    p += "; filename=\"" + filename + "\"";
  return p + "\r\n\r\n" + bytes + "\r\n";
}

struct FormReader : ::testing::Test {
  fs::path dir = fs::temp_directory_path() /
                 ("postd-upload-" + postd::core::random_uuid());
  void TearDown() override { fs::remove_all(dir); }

  std::vector<std::string> files() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator{dir, ec})
      out.push_back(e.path().filename().string());
    return out;
  }

  // Reads `body` in chunks of `chunk` bytes; the refusal's status or 0.
  unsigned read(form_reader& f, const std::string& body,
                std::size_t chunk = 7) {
    for (std::size_t i = 0; i < body.size(); i += chunk)
      if (!f.feed(std::string_view{body}.substr(i, chunk)))
        return f.refusal()->status;
    return f.finish() ? 0 : f.refusal()->status;
  }
  static std::string message(const form_reader& f) {
    return nlohmann::json::parse(f.refusal()->body)["message"].dump();
  }
};

} // namespace

TEST_F(FormReader, ReadsContentAndFilesWhateverTheChunks) {
  for (std::size_t chunk : {1, 3, 64, 4096}) {
    form_reader f{"B", dir, {}};
    auto body = part("files", "a.png", png) + part("content", "", "héllo") +
                part("note", "", "ignored") + part("files", "b.gif", gif) +
                "--B--\r\n";
    ASSERT_EQ(read(f, body, chunk), 0u) << chunk;
    EXPECT_EQ(f.form().content, "héllo");
    ASSERT_EQ(f.form().stored.size(), 2u);
    EXPECT_EQ(f.form().stored[0].substr(64), ".png");
    EXPECT_EQ(f.form().stored[1].substr(64), ".gif");
    EXPECT_EQ(files().size(), 2u);
  }
}

TEST_F(FormReader, RefusalsNameTheirCause) {
  upload_limits small{
      .max_files = 1, .max_file_bytes = 32, .max_content_chars = 5};
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("files", "a.png", png + "-much-too-long-for-it") +
                          "--B--\r\n"),
              413u);
    EXPECT_NE(message(f).find("at most 32 bytes"), std::string::npos);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(
        read(f, part("files", "a.png", "just text, no image") + "--B--\r\n"),
        415u);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("content", "", "hi") + part("files", "a", png) +
                          part("files", "b", png) + "--B--\r\n"),
              400u);
    EXPECT_NE(message(f).find("Too many files"), std::string::npos);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("content", "", std::string(21, 'x')) + "--B--\r\n"),
              400u);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("content", "", "a") + part("content", "", "b") +
                          "--B--\r\n"),
              400u);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("avatar", "a.png", png) + "--B--\r\n"), 400u);
    EXPECT_NE(message(f).find("Unexpected field avatar"), std::string::npos);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("files", "a.png", png) + "--B--\r\n"), 400u);
    EXPECT_NE(message(f).find("content must not be empty"), std::string::npos);
  }
  {
    form_reader f{"B", dir, small};
    EXPECT_EQ(read(f, part("content", "", "x") + "--B"), 400u); // cut short
  }
  // No refused form leaves a file, not even one read whole (files are
  // committed only once the form is accepted) or a temporary one.
  EXPECT_EQ(files(), std::vector<std::string>{});
}

TEST_F(FormReader, TheBodyLimitCoversEveryFileAtItsLimit) {
  upload_limits l{
      .max_files = 4, .max_file_bytes = 1000, .max_content_chars = 10};
  EXPECT_GT(form_reader::max_body_bytes(l), 4000u + 40u);
  EXPECT_LT(form_reader::max_body_bytes(l), 4000u + 1024u * 1024u);
}
