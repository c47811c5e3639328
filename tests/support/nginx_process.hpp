#pragma once

// The deploy kit's nginx (deploy/nginx.conf) of a test's own, in front of
// postd instances on loopback: started and stopped with deploy/lib/
// common.sh's postd_start_nginx / postd_stop_nginx under
// POSTD_TEST_SERVICES_DIR.

#include <string>
#include <vector>

#include "support/server_process.hpp"
#include "support/test_env.hpp"

namespace postd::testing {

class private_nginx {
public:
  // `upstream_ports`: postd1, postd2, ... of deploy/nginx.conf.
  explicit private_nginx(const std::vector<int>& upstream_ports)
      : dir_(service_dir("nginx")), port_(free_port()) {
    // Its own port, then the upstreams'. Appended piece by piece: GCC 12
    // warns (-Wrestrict, a false positive) on "..." + std::to_string(...).
    std::vector<int> ports{port_};
    ports.insert(ports.end(), upstream_ports.begin(), upstream_ports.end());
    std::string cmd = "postd_start_nginx " + dir_;
    for (int p : ports) {
      cmd += ' ';
      cmd += std::to_string(p);
    }
    must(cmd);
  }
  ~private_nginx() {
    shell("postd_stop_nginx " + dir_);
    shell("rm -rf " + dir_);
  }
  private_nginx(const private_nginx&) = delete;
  private_nginx& operator=(const private_nginx&) = delete;

  int port() const { return port_; }
  // Its access log (one JSON object per line: deploy/nginx.conf's "postd").
  std::string access_log_path() const { return dir_ + "/access.log"; }

private:
  std::string dir_;
  int port_;
};

} // namespace postd::testing
