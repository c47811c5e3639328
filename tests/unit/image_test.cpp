// Images are what their bytes say, whatever their name or declared type.

#include <string>

#include <gtest/gtest.h>

#include "core/image.hpp"

using postd::core::sniff_image;

TEST(SniffImage, KnowsTheFourSignatures) {
  using namespace std::string_literals;
  EXPECT_EQ(sniff_image("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01"s)->extension,
            "jpg");
  EXPECT_EQ(sniff_image("\x89PNG\r\n\x1A\n\x00\x00\x00\x0D"s)->content_type,
            "image/png");
  EXPECT_EQ(sniff_image("GIF89a\x01\x00\x01\x00\x80\x00"s)->extension, "gif");
  EXPECT_EQ(sniff_image("GIF87a\x01\x00\x01\x00\x80\x00"s)->extension, "gif");
  EXPECT_EQ(sniff_image("RIFF\x24\x00\x00\x00WEBPVP8 "s)->content_type,
            "image/webp");
}

TEST(SniffImage, RefusesEverythingElse) {
  using namespace std::string_literals;
  for (const std::string& other :
       {""s, "hello, I am a .png"s, "\x89PNG"s, "RIFF\x24\x00\x00\x00WAVEfmt "s,
        "GIF88a\x01\x00"s, "\xFF\xD8"s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"s, "%PDF-1.7\n"s})
    EXPECT_FALSE(sniff_image(other)) << other;
}
