#include "launcher/cage/dns_probe.hpp"

#include <string_view>

namespace cagent::cage {

std::vector<std::uint8_t> build_probe_query(std::uint16_t id) {
  std::vector<std::uint8_t> packet = {
      static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id & 0xff),
      0x01, 0x00,   // RD
      0x00, 0x01,   // QDCOUNT
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  std::string_view name = kProbeName;
  while (!name.empty()) {
    const auto dot = name.find('.');
    const auto label = name.substr(0, dot);
    packet.push_back(static_cast<std::uint8_t>(label.size()));
    packet.insert(packet.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  packet.insert(packet.end(), {0x00, 0x00, 0x01, 0x00, 0x03});  // root, QTYPE A, QCLASS CH
  return packet;
}

bool is_probe_answer(std::span<const std::uint8_t> packet, std::uint16_t id) {
  if (packet.size() < 12) return false;
  const auto got = static_cast<std::uint16_t>((packet[0] << 8) | packet[1]);
  return got == id && (packet[2] & 0x80) != 0;
}

}  // namespace cagent::cage
