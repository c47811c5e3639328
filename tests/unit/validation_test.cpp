#include <gtest/gtest.h>

#include "http/validation.hpp"

using namespace postd::http;

TEST(Validation, AcceptsContent) {
  auto r = validate_create_body(R"({"content":"hello"})", 10);
  ASSERT_TRUE(r.body);
  EXPECT_EQ(r.body->content, "hello");
  EXPECT_TRUE(r.messages.empty());
}

TEST(Validation, CountsCharactersNotBytes) {
  // Five characters, fifteen bytes.
  auto five = std::string(R"({"content":")") +
              "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\xA9" +
              "\"}";
  EXPECT_TRUE(validate_create_body(five, 5).body);
  EXPECT_FALSE(validate_create_body(five, 4).body);
  EXPECT_EQ(utf8_length("\xF0\x9F\x98\x80"), 1u);
}

TEST(Validation, RefusesBadBodies) {
  auto messages = [](std::string_view body) {
    return validate_create_body(body, 10).messages;
  };
  EXPECT_FALSE(messages("{").empty());
  EXPECT_FALSE(messages("").empty());
  EXPECT_EQ(messages("[]"),
            std::vector<std::string>{"request body must be a JSON object"});
  EXPECT_EQ(messages(R"("text")"),
            std::vector<std::string>{"request body must be a JSON object"});
  EXPECT_EQ(messages(R"({"content":""})"),
            std::vector<std::string>{"content must not be empty"});
  EXPECT_EQ(messages(R"({"content":5})"),
            std::vector<std::string>{"content must be a string"});
  EXPECT_EQ(messages(R"({})"),
            (std::vector<std::string>{"content must not be empty",
                                      "content must be a string"}));
  EXPECT_EQ(messages(R"({"content":"hi","extra":1})"),
            std::vector<std::string>{"property extra should not exist"});
  EXPECT_EQ(messages(R"({"content":"12345678901"})"),
            std::vector<std::string>{
                "content must be shorter than or equal to 10 characters"});
  EXPECT_EQ(
      messages(R"({"content":"a\u0000b"})"),
      std::vector<std::string>{"content must not contain NUL characters"});
}

TEST(Validation, RefusesInvalidUtf8) {
  EXPECT_FALSE(validate_create_body("{\"content\":\"\xC3\x28\"}", 10).body);
  EXPECT_FALSE(validate_create_body("{\"content\":\"\xED\xA0\x80\"}", 10)
                   .body); // surrogate
  EXPECT_FALSE(validate_create_body("{\"content\":\"\xFF\"}", 10).body);
}

TEST(Validation, ContentType) {
  for (const char* type :
       {"application/json", "application/json; charset=utf-8",
        "Application/JSON"})
    EXPECT_TRUE(is_json_content_type(type)) << type;
  for (const char* type : {"text/plain", "", "application/jsonx"})
    EXPECT_FALSE(is_json_content_type(type)) << type;
}

TEST(Validation, IdempotencyKey) {
  for (const std::string& key : {std::string("abc-123"), std::string(255, 'k')})
    EXPECT_TRUE(valid_idempotency_key(key)) << key;
  for (const std::string& key :
       {std::string(""), std::string(256, 'k'), std::string("tab\there"),
        std::string("caf\xC3\xA9")})
    EXPECT_FALSE(valid_idempotency_key(key)) << key;
}

TEST(Validation, Utf8IsCheckedAsRfc3629Says) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xC3"));             // cut short
  EXPECT_FALSE(valid_utf8("\x80"));             // a continuation first
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));         // overlong '/'
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));     // overlong, 3 bytes
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));     // a UTF-16 surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80")); // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xC3\x28"));         // a bad continuation
}

TEST(Validation, ContentFromAFormIsCheckedAsInJson) {
  EXPECT_TRUE(validate_content("hi", 10).body);
  EXPECT_EQ(validate_content("", 10).messages,
            std::vector<std::string>{"content must not be empty"});
  EXPECT_EQ(validate_content("abc", 2).messages,
            std::vector<std::string>{
                "content must be shorter than or equal to 2 characters"});
  EXPECT_EQ(
      validate_content(std::string("a\0b", 3), 10).messages,
      std::vector<std::string>{"content must not contain NUL characters"});
  EXPECT_EQ(validate_content("\xFF", 10).messages,
            std::vector<std::string>{"content must be valid UTF-8"});
}
