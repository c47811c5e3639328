#pragma once

// A storage call that failed, and whether retrying later can help: the
// writers hold their jobs on such an error and fail them only on one that
// is the rows' own doing.

#include <stdexcept>
#include <string>

namespace postd::core {

class store_error : public std::runtime_error {
public:
  store_error(const std::string& what, bool connection_lost)
      : std::runtime_error(what), connection_lost_(connection_lost) {}
  // True unless the request itself is at fault (invalid data, a constraint,
  // a key too large to index): the connection is gone, or the database cannot
  // serve now (disk full, read-only, timeout, schema not yet migrated).
  // Reconnect and retry later; never give up on rows for such an error.
  bool connection_lost() const noexcept { return connection_lost_; }

private:
  bool connection_lost_;
};

} // namespace postd::core
