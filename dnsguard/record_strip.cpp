#include "dnsguard/record_strip.hpp"

#include <array>
#include <cstring>

#include "dnsguard/message.hpp"

namespace cagent::dnsguard {
namespace {

constexpr std::size_t kMaxPointerTarget = 0x3FFF;  // 14 bits
constexpr int kMaxHops = 127;                      // same bound as read_name()

// Copies a message forward, remembering where each label of the old message
// landed in the new one, so that later compression pointers can be
// re-targeted. Every read is bounds-checked; any failure makes ok() false.
class Rewriter {
 public:
  Rewriter(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) : in_(in), out_(out) {}

  bool ok() const noexcept { return ok_; }
  std::size_t size() const noexcept { return len_; }

  void copy(std::size_t from, std::size_t n) noexcept {
    if (!ok_ || from + n > in_.size() || len_ + n > out_.size()) return fail();
    std::memcpy(out_.data() + len_, in_.data() + from, n);
    len_ += n;
  }
  void put16(std::uint16_t v) noexcept {
    if (!ok_ || len_ + 2 > out_.size()) return fail();
    write16(out_, len_, v);
    len_ += 2;
  }
  void patch16(std::size_t at, std::uint16_t v) noexcept {
    if (ok_) write16(out_, at, v);
  }

  // Old offset just past the name at `p` (after its root label or its first
  // pointer); 0 when malformed.
  std::size_t skip_name(std::size_t p) const noexcept {
    while (p < in_.size()) {
      const std::uint8_t label = in_[p];
      if ((label & 0xC0) == 0xC0) return p + 2 <= in_.size() ? p + 2 : 0;
      if ((label & 0xC0) != 0) return 0;
      if (label == 0) return p + 1;
      p += 1 + label;
    }
    return 0;
  }

  // Writes the name at old offset `p`: labels are copied (and remembered),
  // a pointer to an old label already written becomes a pointer to its new
  // place, any other pointer is followed and its labels written out.
  void name(std::size_t p) noexcept {
    std::size_t segment = p;  // pointers must point strictly backwards
    for (int hops = 0; ok_;) {
      if (p >= in_.size()) return fail();
      const std::uint8_t label = in_[p];
      if ((label & 0xC0) == 0xC0) {
        if (p + 1 >= in_.size() || ++hops > kMaxHops) return fail();
        const std::size_t target = (static_cast<std::size_t>(label & 0x3F) << 8) | in_[p + 1];
        if (target < kHeaderSize || target >= segment) return fail();
        if (const std::size_t moved = lookup(target); moved != 0) {
          put16(static_cast<std::uint16_t>(0xC000u | moved));
          return;
        }
        p = segment = target;
        continue;
      }
      if ((label & 0xC0) != 0) return fail();
      remember(p, len_);
      copy(p, 1u + label);
      if (label == 0) return;
      p += 1 + label;
    }
  }

  // The labels of the name at old offset `p`, which sits at the same offset
  // in the new message (the question, copied verbatim).
  void remember_in_place(std::size_t p) noexcept {
    while (ok_ && p < in_.size() && in_[p] != 0 && (in_[p] & 0xC0) == 0) {
      remember(p, p);
      p += 1u + in_[p];
    }
  }

 private:
  void fail() noexcept { ok_ = false; }

  void remember(std::size_t old_pos, std::size_t new_pos) noexcept {
    if (new_pos > kMaxPointerTarget || count_ == moved_.size()) return;  // just not reusable
    moved_[count_++] = {static_cast<std::uint16_t>(old_pos), static_cast<std::uint16_t>(new_pos)};
  }
  std::size_t lookup(std::size_t old_pos) const noexcept {
    for (std::size_t i = 0; i < count_; ++i)
      if (moved_[i].first == old_pos) return moved_[i].second;
    return 0;  // 0 is never a label's offset (the header is there)
  }

  std::span<const std::uint8_t> in_;
  std::span<std::uint8_t> out_;
  std::size_t len_ = 0;
  bool ok_ = true;
  // Old label offset -> new offset. Bounded: past it, names are written
  // out in full instead of pointed to, which is still correct.
  std::array<std::pair<std::uint16_t, std::uint16_t>, 1024> moved_{};
  std::size_t count_ = 0;
};

// RFC 1035 types whose RDATA holds compressible names: how many names, and
// where the first starts (MX, AFSDB and RT have a 16-bit preference first).
struct NameLayout {
  std::size_t prefix = 0;  // bytes before the first name
  int names = 0;           // consecutive names
};
NameLayout layout_of(std::uint16_t type) noexcept {
  switch (type) {
    case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:  // NS MD MF CNAME MB MG MR PTR
      return {0, 1};
    case 6:  // SOA: MNAME RNAME, then 20 bytes of numbers
      return {0, 2};
    case 14: case 17:  // MINFO, RP
      return {0, 2};
    case 15: case 18: case 21:  // MX, AFSDB, RT
      return {2, 1};
    default:
      return {0, 0};
  }
}

}  // namespace

std::size_t strip_records(std::span<const std::uint8_t> wire, std::span<const RrRange> drop,
                          std::span<std::uint8_t> out, bool drop_ech) noexcept {
  if (wire.size() < kHeaderSize || out.size() < kHeaderSize) return 0;
  Rewriter w(wire, out);
  // Header and question verbatim (counts patched at the end).
  const std::size_t qd = read16(wire, 4);
  std::size_t pos = kHeaderSize;
  for (std::size_t i = 0; i < qd; ++i) {
    const std::size_t name_end = w.skip_name(pos);
    if (name_end == 0 || name_end + 4 > wire.size()) return 0;
    pos = name_end + 4;
  }
  w.copy(0, pos);
  for (std::size_t p = kHeaderSize, i = 0; i < qd && w.ok(); ++i) {
    w.remember_in_place(p);
    p = w.skip_name(p) + 4;
  }

  std::array<std::size_t, 3> counts = {read16(wire, 6), read16(wire, 8), read16(wire, 10)};
  std::array<std::size_t, 3> kept = {0, 0, 0};
  std::size_t next_drop = 0;
  for (std::size_t section = 0; section < 3; ++section) {
    for (std::size_t i = 0; i < counts[section] && w.ok(); ++i) {
      const std::size_t start = pos;
      const std::size_t owner_end = w.skip_name(pos);
      if (owner_end == 0 || owner_end + 10 > wire.size()) return 0;
      const std::uint16_t type = read16(wire, owner_end);
      const std::size_t rdata = owner_end + 10;
      const std::size_t rdlen = read16(wire, owner_end + 8);
      if (rdata + rdlen > wire.size()) return 0;
      pos = rdata + rdlen;
      while (next_drop < drop.size() && drop[next_drop].start < start) ++next_drop;
      if (next_drop < drop.size() && drop[next_drop].start == start) {
        if (drop[next_drop].end != pos) return 0;  // not the record the caller meant
        continue;
      }
      ++kept[section];
      w.name(start);
      w.copy(owner_end, 8);  // type, class, TTL
      const std::size_t rdlen_at = w.size();
      w.put16(0);
      const NameLayout layout = layout_of(type);
      std::size_t p = rdata;
      if (drop_ech && (type == rrtype::SVCB || type == rrtype::HTTPS)) {
        // SvcPriority, TargetName (never compressed, RFC 9460 2.2), then
        // key/length/value parameters: every one but `ech` is kept.
        const std::size_t target_end = w.skip_name(rdata + 2);
        if (rdlen < 3 || target_end == 0 || target_end > rdata + rdlen || (wire[rdata + 2] & 0xC0) != 0) return 0;
        w.copy(rdata, target_end - rdata);
        for (p = target_end; p < rdata + rdlen;) {
          if (p + 4 > rdata + rdlen) return 0;
          const std::uint16_t key = read16(wire, p);
          const std::size_t len = read16(wire, p + 2);
          if (p + 4 + len > rdata + rdlen) return 0;
          if (key != kSvcParamEch) w.copy(p, 4 + len);
          p += 4 + len;
        }
      } else if (layout.names > 0) {
        if (rdlen < layout.prefix) return 0;
        w.copy(p, layout.prefix);
        p += layout.prefix;
        for (int n = 0; n < layout.names && w.ok(); ++n) {
          const std::size_t end = w.skip_name(p);
          if (end == 0 || end > rdata + rdlen) return 0;
          w.name(p);
          p = end;
        }
      }
      w.copy(p, rdata + rdlen - p);  // the rest (all of it for other types)
      if (!w.ok()) return 0;
      w.patch16(rdlen_at, static_cast<std::uint16_t>(w.size() - rdlen_at - 2));
    }
  }
  if (!w.ok()) return 0;
  w.patch16(6, static_cast<std::uint16_t>(kept[0]));
  w.patch16(8, static_cast<std::uint16_t>(kept[1]));
  w.patch16(10, static_cast<std::uint16_t>(kept[2]));
  return w.size();
}

}  // namespace cagent::dnsguard
