#pragma once
// bench/names — where the load generator's query names come from: a list
// read from a file, or N generated names "<salt>-<i>.<zone>". Index i maps to
// name i mod N, so a run longer than N repeats names (hot names = cache hits),
// a run of at most N names is all misses. Names are pre-encoded to wire form
// once (file) or encoded on the fly (generated), so sending allocates nothing.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cagent::bench {

class NameSource {
 public:
  // From presentation-format names. Throws std::invalid_argument naming the
  // first name that does not encode, or when the list is empty.
  static NameSource from_list(const std::vector<std::string>& names);
  // Reads one name per line; blank lines and '#' comments skipped. Throws
  // std::runtime_error naming the file on I/O errors.
  static NameSource from_file(const std::string& path);
  // Throws std::invalid_argument when the zone or salt does not fit in a name.
  static NameSource generated(std::uint64_t count, std::string_view zone, std::string_view salt);

  std::uint64_t size() const noexcept { return size_; }

  // Writes the wire name for index `i` (mod size) to `out`; returns its length,
  // 0 when `out` is too small.
  std::size_t wire_name(std::uint64_t i, std::span<std::uint8_t> out) const noexcept;

  // Presentation form of name `i` (for diagnostics and tests).
  std::string name(std::uint64_t i) const;

 private:
  NameSource() = default;
  std::uint64_t size_ = 0;
  // List mode: concatenated wire names with their offsets.
  std::vector<std::uint8_t> wire_;
  std::vector<std::uint32_t> offsets_;
  // Generated mode: "<salt>-" label prefix and the zone's wire form.
  std::string salt_;
  std::vector<std::uint8_t> zone_wire_;
};

// A short random label prefix so that generated names of two runs differ
// (a resolver's cache from an earlier run must not turn misses into hits).
std::string random_salt();

}  // namespace cagent::bench
