#include "ldns_message.hpp"

// ldns/common.h defines bool/true/false as macros unless <stdbool.h> came first.
#include <stdbool.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace cagent::dnsguard {

namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const noexcept { ldns_rdf_deep_free(r); }
};
struct RrFree {
  void operator()(ldns_rr* r) const noexcept { ldns_rr_free(r); }
};
struct BufFree {
  void operator()(std::uint8_t* p) const noexcept { std::free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;

RdfPtr dname(std::string_view name) {
  std::string text(name);
  if (text.empty() || text.back() != '.') text.push_back('.');
  return RdfPtr(ldns_dname_new_frm_str(text.c_str()));
}

std::vector<std::uint8_t> to_wire(const ldns_pkt* pkt) {
  std::uint8_t* raw = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&raw, pkt, &size) != LDNS_STATUS_OK)
    throw std::runtime_error("ldns_pkt2wire failed");
  std::unique_ptr<std::uint8_t, BufFree> owned(raw);
  return {raw, raw + size};
}

}  // namespace

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
