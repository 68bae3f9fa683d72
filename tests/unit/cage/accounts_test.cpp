#include <doctest/doctest.h>

#include "launcher/cage/accounts.hpp"

using cagent::cage::AccountError;
using cagent::cage::rewrite_group;
using cagent::cage::rewrite_passwd;

TEST_CASE("rewrite_passwd changes only the agent's uid and gid") {
  const std::string passwd =
      "root:x:0:0:root:/root:/bin/bash\n"
      "agent2:x:1001:1001::/home/agent2:/bin/bash\n"
      "agent:x:1000:1000::/home/agent:/bin/bash\n"
      "dnsguard:x:100:101::/nonexistent:/usr/sbin/nologin\n";
  CHECK(rewrite_passwd(passwd, "agent", 501, 20) ==
        "root:x:0:0:root:/root:/bin/bash\n"
        "agent2:x:1001:1001::/home/agent2:/bin/bash\n"
        "agent:x:501:20::/home/agent:/bin/bash\n"
        "dnsguard:x:100:101::/nonexistent:/usr/sbin/nologin\n");
}

TEST_CASE("rewrite_passwd keeps a missing final newline and rejects missing or duplicate users") {
  CHECK(rewrite_passwd("agent:x:1000:1000::/home/agent:/bin/bash", "agent", 7, 8) ==
        "agent:x:7:8::/home/agent:/bin/bash");
  CHECK_THROWS_AS(rewrite_passwd("root:x:0:0:root:/root:/bin/bash\n", "agent", 7, 8), AccountError);
  CHECK_THROWS_AS(rewrite_passwd("agent:x:1:1::/h:/bin/sh\nagent:x:2:2::/h:/bin/sh\n", "agent", 7, 8), AccountError);
  // A malformed line with the right name is not an entry.
  CHECK_THROWS_AS(rewrite_passwd("agent:x:1000\n", "agent", 7, 8), AccountError);
}

TEST_CASE("rewrite_group renumbers the user-private group only") {
  const std::string group = "root:x:0:\nusers:x:100:agent\nagent:x:1000:\n";
  CHECK(rewrite_group(group, "agent", 1000, 20) == "root:x:0:\nusers:x:100:agent\nagent:x:20:\n");
  // The agent's primary group is a shared one: leave the file alone.
  CHECK(rewrite_group(group, "agent", 100, 20) == group);
  CHECK(rewrite_group("root:x:0:\n", "agent", 1000, 20) == "root:x:0:\n");
}
