#pragma once
// Hand-built wire messages for the tests (byte-exact control that ldns,
// which validates its input, does not give).

#include <cstdint>
#include <string_view>
#include <vector>

namespace test_wire {

inline void put16(std::vector<std::uint8_t>& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xFFFF);
}
inline void put_name(std::vector<std::uint8_t>& b, std::string_view name) {
  while (!name.empty()) {
    auto dot = name.find('.');
    auto label = name.substr(0, dot);
    b.push_back(static_cast<std::uint8_t>(label.size()));
    b.insert(b.end(), label.begin(), label.end());
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  b.push_back(0);
}

struct QuerySpec {
  std::string_view name = "www.example.test";
  unsigned type = 1, cls = 1, flags = 0x0100, qdcount = 1, id = 0xbeef;
  bool edns = false;
  unsigned udp = 1232;
  bool do_bit = false;
  std::vector<std::uint8_t> options;  // EDNS option bytes
};

inline std::vector<std::uint8_t> query(const QuerySpec& s) {
  std::vector<std::uint8_t> b;
  put16(b, s.id);
  put16(b, s.flags);
  put16(b, s.qdcount);
  put16(b, 0);
  put16(b, 0);
  put16(b, s.edns ? 1 : 0);
  if (s.qdcount > 0) {
    put_name(b, s.name);
    put16(b, s.type);
    put16(b, s.cls);
  }
  if (s.edns) {
    b.push_back(0);
    put16(b, 41);
    put16(b, s.udp);
    put32(b, s.do_bit ? 0x8000 : 0);
    put16(b, static_cast<unsigned>(s.options.size()));
    b.insert(b.end(), s.options.begin(), s.options.end());
  }
  return b;
}

// EDNS Client Subnet option (code 8) for 192.0.2.0/24.
inline std::vector<std::uint8_t> ecs_option() {
  std::vector<std::uint8_t> o;
  put16(o, 8);
  put16(o, 7);
  put16(o, 1);  // family IPv4
  o.push_back(24);
  o.push_back(0);
  o.insert(o.end(), {192, 0, 2});
  return o;
}

}  // namespace test_wire
