#pragma once
// ldns objects owned by unique_ptr, and the two conversions every builder of
// whole messages needs. Included only where messages are built from text
// (ldns_message.cpp; the unit tests' canned answers): the per-packet path
// never touches ldns.

// ldns/common.h defines bool/true/false as macros unless <stdbool.h> came first.
#include <stdbool.h>
#include <ldns/ldns.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::dnsguard::ldns {

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

// A dotted name (trailing dot optional) as an ldns dname; null when ldns rejects it.
inline RdfPtr dname(std::string_view name) {
  std::string text(name);
  if (text.empty() || text.back() != '.') text.push_back('.');
  return RdfPtr(ldns_dname_new_frm_str(text.c_str()));
}

// The packet's wire form. Throws std::runtime_error.
inline std::vector<std::uint8_t> to_wire(const ldns_pkt* pkt) {
  std::uint8_t* raw = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&raw, pkt, &size) != LDNS_STATUS_OK) throw std::runtime_error("ldns_pkt2wire failed");
  const std::unique_ptr<std::uint8_t, BufFree> owned(raw);
  return {raw, raw + size};
}

}  // namespace cagent::dnsguard::ldns
