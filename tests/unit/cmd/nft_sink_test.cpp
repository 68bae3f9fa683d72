#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdexcept>

#include "cmd/nft_sink.hpp"

// The pure half of the nft-backed sink; the kernel half (SetUpdater::add)
// is covered by the netns tests.
using namespace cagent;

TEST_CASE("nft sink: an IPv4 answer address becomes a v4 set element with its timeout and floor") {
  dnsguard::AllowedAddress a;
  a.bytes = {192, 0, 2, 7};
  a.timeout_s = 300;
  a.min_timeout_s = 150;
  const nft::SetElement e = cmd::to_set_element(a);
  CHECK(e.addr.family == nft::Family::v4);
  CHECK(e.addr.bytes == a.bytes);
  CHECK(e.timeout == std::chrono::seconds(300));
  CHECK(e.min_timeout == std::chrono::seconds(150));
}

TEST_CASE("nft sink: an IPv6 address keeps all 16 bytes, and no floor stays no floor") {
  dnsguard::AllowedAddress a;
  a.v6 = true;
  a.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  a.timeout_s = 30;
  const nft::SetElement e = cmd::to_set_element(a);
  CHECK(e.addr.family == nft::Family::v6);
  CHECK(e.addr.bytes == a.bytes);
  CHECK(e.timeout == std::chrono::seconds(30));
  CHECK(e.min_timeout == std::chrono::seconds(0));
}

TEST_CASE("nft sink: held times are whole seconds rounded down, saturated") {
  using std::chrono::milliseconds;
  CHECK(cmd::held_seconds(milliseconds(0)) == 0);
  CHECK(cmd::held_seconds(milliseconds(999)) == 0);  // never promise a second the set does not cover
  CHECK(cmd::held_seconds(milliseconds(1000)) == 1);
  CHECK(cmd::held_seconds(milliseconds(299'999)) == 299);
  CHECK(cmd::held_seconds(milliseconds(-5)) == 0);
  CHECK(cmd::held_seconds(milliseconds(0x1'0000'0000LL * 1000 + 5)) == 0xFFFFFFFFu);
}

TEST_CASE("nft sink: CAGENT_NFT_REFRESH values") {
  using Mode = nft::SetUpdater::RefreshMode;
  CHECK(cmd::refresh_mode_from("") == Mode::automatic);
  CHECK(cmd::refresh_mode_from("automatic") == Mode::automatic);
  CHECK(cmd::refresh_mode_from("delete_add") == Mode::delete_add);
  CHECK(cmd::refresh_mode_from("expiration") == Mode::expiration);
  CHECK_THROWS_WITH_AS(cmd::refresh_mode_from("Delete_Add"),
                       "CAGENT_NFT_REFRESH: expected automatic, delete_add or expiration, got 'Delete_Add'",
                       std::invalid_argument);
}
