#include "launcher/cage/local_sockets.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

namespace cagent::cage {
namespace {

std::string_view field(std::string_view line, std::size_t index) {
  std::size_t pos = 0;
  for (std::size_t i = 0;; ++i) {
    pos = line.find_first_not_of(' ', pos);
    if (pos == std::string_view::npos) return {};
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    if (i == index) return line.substr(pos, end - pos);
    pos = end;
  }
}

template <typename T>
bool hex(std::string_view text, T& out) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// The kernel prints each 32-bit word of the address as the number its
// bytes make in host order (%08X of a __be32): copying that number back
// into memory restores the bytes on either endianness.
bool parse_address(std::string_view text, nft::Family family, nft::Address& out) {
  const std::size_t words = family == nft::Family::v4 ? 1 : 4;
  if (text.size() != words * 8) return false;
  out = nft::Address{};
  out.family = family;
  for (std::size_t w = 0; w < words; ++w) {
    std::uint32_t word = 0;
    if (!hex(text.substr(w * 8, 8), word)) return false;
    std::memcpy(out.bytes.data() + w * 4, &word, 4);
  }
  return true;
}

// Calls `row` with each line of a /proc/net table, the header included.
template <typename Row>
void for_each_line(std::string_view text, Row row) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    row(text.substr(pos, end - pos));
    pos = end + 1;
  }
}

}  // namespace

std::vector<LocalSocket> parse_socket_table(std::string_view text, nft::Family family) {
  std::vector<LocalSocket> out;
  for_each_line(text, [&](std::string_view line) {
    // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid …"
    const std::string_view local = field(line, 1);
    const std::size_t colon = local.find(':');
    LocalSocket s;
    std::uint16_t port = 0;
    unsigned long uid = 0;
    if (colon == std::string_view::npos || !parse_address(local.substr(0, colon), family, s.addr) ||
        !hex(local.substr(colon + 1), port))
      return;  // the header row, or something we cannot read
    const std::string_view uid_text = field(line, 7);
    const auto [ptr, ec] = std::from_chars(uid_text.data(), uid_text.data() + uid_text.size(), uid);
    if (ec != std::errc() || ptr != uid_text.data() + uid_text.size() || uid_text.empty()) return;
    s.port = port;
    s.uid = static_cast<uid_t>(uid);
    out.push_back(s);
  });
  return out;
}

std::size_t unfinished_connections(std::string_view text, std::uint16_t port) {
  // States as the kernel numbers them (include/net/tcp_states.h).
  constexpr unsigned kEstablished = 0x01, kSynRecv = 0x03, kCloseWait = 0x08;
  std::size_t count = 0;
  for_each_line(text, [&](std::string_view line) {
    const std::string_view local = field(line, 1);
    const std::size_t colon = local.find(':');
    std::uint16_t local_port = 0;
    unsigned state = 0;
    if (colon == std::string_view::npos || !hex(local.substr(colon + 1), local_port) || !hex(field(line, 3), state))
      return;  // the header row
    if (local_port == port && (state == kEstablished || state == kSynRecv || state == kCloseWait)) ++count;
  });
  return count;
}

namespace {
template <typename Match>
std::vector<uid_t> owners_where(const std::vector<LocalSocket>& sockets, Match match) {
  std::vector<uid_t> uids;
  for (const LocalSocket& s : sockets)
    if (match(s)) uids.push_back(s.uid);
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}
}  // namespace

std::vector<uid_t> owners_of(const std::vector<LocalSocket>& sockets, const nft::Address& addr) {
  return owners_where(sockets, [&](const LocalSocket& s) { return s.addr == addr; });
}

std::vector<uid_t> owners_of(const std::vector<LocalSocket>& sockets, const nft::Address& addr, std::uint16_t port) {
  return owners_where(sockets, [&](const LocalSocket& s) { return s.addr == addr && s.port == port; });
}

}  // namespace cagent::cage
