#include <doctest/doctest.h>

#include "launcher/cage/local_sockets.hpp"

using namespace cagent;
using namespace cagent::cage;

namespace {
nft::Address addr(const char* text) { return *nft::parse_address(text); }

// As a container on a user-defined network shows them: Docker's embedded
// resolver (root) on 127.0.0.11, a random port; dnsguard (uid 101)
// connected to it; an agent socket (uid 1000).
constexpr const char* kUdp =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    " 6654: 0B00007F:B9D4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22342 2 0000000000000000 0\n"
    " 6655: 0100007F:D431 0B00007F:0035 01 00000000:00000000 00:00000000 00000000   101        0 22343 2 0000000000000000 0\n"
    " 6656: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 22344 2 0000000000000000 0\n"
    " 6657: 0200A8C0:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 22345 2 0000000000000000 0\n";
}  // namespace

TEST_CASE("parse_socket_table: local address, port and uid of every row") {
  const std::vector<LocalSocket> sockets = parse_socket_table(kUdp, nft::Family::v4);
  REQUIRE(sockets.size() == 4);
  CHECK(sockets[0] == LocalSocket{addr("127.0.0.11"), 0xB9D4, 0});
  CHECK(sockets[1] == LocalSocket{addr("127.0.0.1"), 0xD431, 101});
  CHECK(sockets[2] == LocalSocket{addr("127.0.0.1"), 53, 101});
  CHECK(sockets[3] == LocalSocket{addr("192.168.0.2"), 8080, 1000});
}

TEST_CASE("parse_socket_table: IPv6 words and rows it cannot read") {
  // ::1 port 53 (uid 7), then a truncated row and a row with a bad address.
  const char* text =
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
      "tm->when retrnsmt   uid  timeout inode\n"
      "    0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 "
      "00:00000000 00000000     7        0 1 2 0 0\n"
      "    1: 00000000000000000000000001000000:0035\n"
      "    2: 0000000000000000000000000100000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 "
      "00:00000000 00000000     7        0 1 2 0 0\n";
  const std::vector<LocalSocket> sockets = parse_socket_table(text, nft::Family::v6);
  REQUIRE(sockets.size() == 1);
  CHECK(sockets[0] == LocalSocket{addr("::1"), 53, 7});
  CHECK(parse_socket_table("", nft::Family::v4).empty());
}

TEST_CASE("owners_of: the distinct uids bound to an address, whatever the port") {
  std::vector<LocalSocket> sockets = parse_socket_table(kUdp, nft::Family::v4);
  CHECK(owners_of(sockets, addr("127.0.0.11")) == std::vector<uid_t>{0});
  CHECK(owners_of(sockets, addr("127.0.0.1")) == std::vector<uid_t>{101});
  CHECK(owners_of(sockets, addr("127.0.0.12")).empty());
  sockets.push_back(LocalSocket{addr("127.0.0.11"), 40000, 0});     // its TCP listener: same owner
  CHECK(owners_of(sockets, addr("127.0.0.11")) == std::vector<uid_t>{0});
  sockets.push_back(LocalSocket{addr("127.0.0.11"), 40001, 1000});  // someone else too
  CHECK(owners_of(sockets, addr("127.0.0.11")) == std::vector<uid_t>{0, 1000});
}

TEST_CASE("unfinished_connections: the gate's connections its owner has not finished with") {
  // Port 999 (0x03E7): the listener (0A), one established (01), one in the
  // handshake (03), one the peer closed (08), one the owner closed (FIN_WAIT1
  // 04, LAST_ACK 09, TIME_WAIT 06); and an established one on another port.
  const char* text =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:03E7 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 1 1\n"
      "   1: 0100007F:03E7 0100007F:A001 01 00000000:00000000 00:00000000 00000000   101        0 2 1\n"
      "   2: 0100007F:03E7 0100007F:A002 03 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
      "   3: 0100007F:03E7 0100007F:A003 08 00000000:00000000 00:00000000 00000000   101        0 3 1\n"
      "   4: 0100007F:03E7 0100007F:A004 04 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
      "   5: 0100007F:03E7 0100007F:A005 09 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
      "   6: 0100007F:03E7 0100007F:A006 06 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
      "   7: 0100007F:0050 0100007F:A007 01 00000000:00000000 00:00000000 00000000  1000        0 4 1\n"
      "   8: 0100007F:03E7\n";
  CHECK(unfinished_connections(text, 999) == 3);
  CHECK(unfinished_connections(text, 80) == 1);
  CHECK(unfinished_connections(text, 443) == 0);
  CHECK(unfinished_connections("", 999) == 0);
}
