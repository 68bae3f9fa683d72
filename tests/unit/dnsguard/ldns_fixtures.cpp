#include "tests/unit/dnsguard/ldns_fixtures.hpp"

#include "dnsguard/ldns_handles.hpp"

namespace cagent::dnsguard {

using namespace ldns;

std::vector<std::uint8_t> build_response_wire(std::string_view qname, std::uint16_t qtype,
                                              std::uint8_t rcode,
                                              const std::vector<std::string>& answer,
                                              const std::vector<std::string>& authority,
                                              const std::vector<std::string>& additional) {
  RdfPtr owner = dname(qname);
  if (!owner) throw std::runtime_error("bad qname " + std::string(qname));
  PktPtr pkt(ldns_pkt_query_new(owner.release(), static_cast<ldns_rr_type>(qtype),
                                LDNS_RR_CLASS_IN, LDNS_RD));
  if (!pkt) throw std::runtime_error("ldns_pkt_query_new failed");
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_ra(pkt.get(), true);
  ldns_pkt_set_rcode(pkt.get(), rcode);
  ldns_pkt_set_id(pkt.get(), 0x1234);
  auto push = [&](const std::vector<std::string>& lines, ldns_pkt_section section) {
    for (const auto& line : lines) {
      ldns_rr* raw = nullptr;
      if (ldns_rr_new_frm_str(&raw, line.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK)
        throw std::runtime_error("bad record: " + line);
      RrPtr rr(raw);
      if (!ldns_pkt_push_rr(pkt.get(), section, rr.get()))
        throw std::runtime_error("ldns_pkt_push_rr failed");
      (void)rr.release();  // the packet owns it now
    }
  };
  push(answer, LDNS_SECTION_ANSWER);
  push(authority, LDNS_SECTION_AUTHORITY);
  push(additional, LDNS_SECTION_ADDITIONAL);
  return to_wire(pkt.get());
}

}  // namespace cagent::dnsguard
