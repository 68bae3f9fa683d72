#include "bench/names.hpp"

#include "bench/dns_wire.hpp"

#include <charconv>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

namespace cagent::bench {

NameSource NameSource::from_list(const std::vector<std::string>& names) {
  if (names.empty()) throw std::invalid_argument("name list is empty");
  NameSource s;
  std::uint8_t buf[kMaxWireName];
  for (const auto& n : names) {
    const std::size_t len = encode_name(n, buf);
    if (len == 0) throw std::invalid_argument("'" + n + "' is not a valid DNS name");
    s.offsets_.push_back(static_cast<std::uint32_t>(s.wire_.size()));
    s.wire_.insert(s.wire_.end(), buf, buf + len);
  }
  s.offsets_.push_back(static_cast<std::uint32_t>(s.wire_.size()));
  s.size_ = names.size();
  return s;
}

NameSource NameSource::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open names file " + path);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    names.push_back(line.substr(first, last - first + 1));
  }
  if (in.bad()) throw std::runtime_error("error reading names file " + path);
  if (names.empty()) throw std::runtime_error("names file " + path + " holds no names");
  try {
    return from_list(names);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

NameSource NameSource::generated(std::uint64_t count, std::string_view zone, std::string_view salt) {
  if (count == 0) throw std::invalid_argument("--generate needs at least one name");
  NameSource s;
  s.size_ = count;
  s.salt_ = std::string(salt) + "-";
  std::uint8_t buf[kMaxWireName];
  const std::size_t len = encode_name(zone, buf);
  if (len == 0) throw std::invalid_argument("zone '" + std::string(zone) + "' is not a valid DNS name");
  s.zone_wire_.assign(buf, buf + len);
  // The longest label is salt + "-" + 20 digits; both must fit a name.
  if (s.salt_.size() + 20 > 63 || 1 + s.salt_.size() + 20 + len > kMaxWireName)
    throw std::invalid_argument("salt '" + std::string(salt) + "' too long for zone '" + std::string(zone) + "'");
  return s;
}

std::size_t NameSource::wire_name(std::uint64_t i, std::span<std::uint8_t> out) const noexcept {
  i %= size_;
  if (!offsets_.empty()) {
    const std::size_t begin = offsets_[i];
    const std::size_t len = offsets_[i + 1] - begin;
    if (len > out.size()) return 0;
    std::memcpy(out.data(), wire_.data() + begin, len);
    return len;
  }
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, i);
  if (ec != std::errc{}) return 0;
  const auto ndigits = static_cast<std::size_t>(end - digits);
  const std::size_t label = salt_.size() + ndigits;
  const std::size_t total = 1 + label + zone_wire_.size();
  if (total > out.size()) return 0;
  out[0] = static_cast<std::uint8_t>(label);
  std::memcpy(out.data() + 1, salt_.data(), salt_.size());
  std::memcpy(out.data() + 1 + salt_.size(), digits, ndigits);
  std::memcpy(out.data() + 1 + label, zone_wire_.data(), zone_wire_.size());
  return total;
}

std::string NameSource::name(std::uint64_t i) const {
  std::uint8_t buf[kMaxWireName];
  const std::size_t len = wire_name(i, buf);
  std::string out;
  std::size_t pos = 0;
  while (pos < len && buf[pos] != 0) {
    if (!out.empty()) out += '.';
    out.append(reinterpret_cast<const char*>(buf + pos + 1), buf[pos]);
    pos += 1u + buf[pos];
  }
  return out.empty() ? "." : out;
}

std::string random_salt() {
  std::random_device rd;
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s = "b";
  std::uniform_int_distribution<std::size_t> pick(0, sizeof kAlphabet - 2);
  for (int i = 0; i < 7; ++i) s += kAlphabet[pick(rd)];
  return s;
}

}  // namespace cagent::bench
