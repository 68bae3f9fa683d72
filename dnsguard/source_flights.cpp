#include "dnsguard/source_flights.hpp"


namespace cagent::dnsguard {

std::size_t SourceKeyHash::operator()(const SourceKey& k) const noexcept {
  // FNV-1a over the 18 bytes: keys are chosen by the client, but a table
  // this size (a few sockets at a time) gains nothing from a keyed hash.
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (std::uint8_t b : k.address) mix(b);
  mix(static_cast<std::uint8_t>(k.port >> 8));
  mix(static_cast<std::uint8_t>(k.port & 0xff));
  return static_cast<std::size_t>(h);
}

SourceFlights::Admission SourceFlights::admit(const SourceKey& source, std::uint32_t token) {
  State& s = by_source_[source];
  if (s.flights < flights_per_source_) {
    ++s.flights;
    return Admission::start;
  }
  if (s.queue.size() >= queued_per_source_) return Admission::refused;
  s.queue.push_back(token);
  ++queued_;
  ++waited_;
  return Admission::queued;
}

std::optional<std::uint32_t> SourceFlights::finished(const SourceKey& source) {
  auto it = by_source_.find(source);
  if (it == by_source_.end() || it->second.flights == 0) return std::nullopt;  // not ours: nothing to release
  State& s = it->second;
  if (!s.queue.empty()) {
    // The slot passes straight to the next queued miss: flights unchanged.
    const std::uint32_t next = s.queue.front();
    s.queue.pop_front();
    --queued_;
    return next;
  }
  if (--s.flights == 0) by_source_.erase(it);
  return std::nullopt;
}

}  // namespace cagent::dnsguard
