#pragma once

// A post as the "Post" table holds it (SPEC §4).

#include <string>
#include <vector>

namespace postd::core {

struct new_post {
  std::string id;     // the post's primary key, given when it was queued
  std::string job_id; // Bull's job id: not unique (its counter can restart)
  std::string content;
  std::string author_id;
  std::vector<std::string> images;
};

struct post {
  std::string id;
  std::string content;
  std::string author_id;
  std::string
      created_at;     // ISO-8601 UTC with milliseconds, e.g. ...T12:00:00.000Z
  std::string job_id; // empty when the row has none
};

} // namespace postd::core
