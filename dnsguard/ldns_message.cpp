#include "dnsguard/ldns_message.hpp"

#include "dnsguard/ldns_handles.hpp"

namespace cagent::dnsguard {

using namespace ldns;

std::optional<std::vector<std::uint8_t>> build_query_wire(std::string_view name,
                                                          std::uint16_t type) {
  RdfPtr owner = dname(name);
  if (!owner) return std::nullopt;
  // ldns_pkt_query_new takes ownership of the name.
  PktPtr pkt(ldns_pkt_query_new(owner.release(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN,
                                LDNS_RD));
  if (!pkt) return std::nullopt;
  ldns_pkt_set_id(pkt.get(), 0);
  ldns_pkt_set_edns_udp_size(pkt.get(), 1232);
  return to_wire(pkt.get());
}

std::optional<WireName> wire_name(std::string_view name) {
  RdfPtr rdf = dname(name);
  if (!rdf) return std::nullopt;
  std::size_t size = ldns_rdf_size(rdf.get());
  WireName out;
  if (size > out.bytes.size()) return std::nullopt;
  std::span<const std::uint8_t> bytes(ldns_rdf_data(rdf.get()), size);
  std::size_t pos = 0;
  // Re-read through our own parser: lowercases and checks the same way the
  // packet path does, so names compare equal to parsed questions.
  std::vector<std::uint8_t> msg(kHeaderSize, 0);
  msg.insert(msg.end(), bytes.begin(), bytes.end());
  pos = kHeaderSize;
  if (!read_name(msg, pos, out)) return std::nullopt;
  return out;
}

}  // namespace cagent::dnsguard
