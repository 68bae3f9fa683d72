#pragma once
// One table of textual IP address cases for both address parsers: dnsguard's
// parse_ip (dnsguard/ip.hpp, used by everything that links cagent_policy)
// and nft's parse_address (nft/nft.hpp, for the nft island, which links
// nothing of ours). Included by tests/unit/dnsguard and tests/unit/nft, so
// the two cannot drift apart unnoticed.

namespace cagent::test {

struct AddressCase {
  const char* text;
  bool valid;
  bool v6;                // when valid
  const char* canonical;  // to_string() of the parsed address, when valid
};

inline constexpr AddressCase kAddressCases[] = {
    {"192.0.2.1", true, false, "192.0.2.1"},
    {"0.0.0.0", true, false, "0.0.0.0"},
    {"127.0.0.1", true, false, "127.0.0.1"},
    {"2001:db8::1", true, true, "2001:db8::1"},
    {"::1", true, true, "::1"},
    {"::", true, true, "::"},
    {"::ffff:192.0.2.1", true, true, "::ffff:192.0.2.1"},
    {"2001:DB8:0:0::1", true, true, "2001:db8::1"},
    {"", false, false, nullptr},
    {"192.0.2", false, false, nullptr},
    {"192.0.2.256", false, false, nullptr},
    {"[::1]", false, false, nullptr},  // brackets belong to endpoints
    {"192.0.2.1:53", false, false, nullptr},
    {"192.0.2.1/24", false, false, nullptr},
    {"2001:db8::g", false, false, nullptr},
    {" 192.0.2.1", false, false, nullptr},
    {"192.0.2.1 ", false, false, nullptr},
    {"fe80::1%eth0", false, false, nullptr},  // scope ids: not expressible in a rule
    {"example.com", false, false, nullptr},
    {"2001:0db8:0000:0000:0000:0000:0000:0001:1", false, false, nullptr},
};

}  // namespace cagent::test
