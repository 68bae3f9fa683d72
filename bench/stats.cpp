#include "bench/stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

namespace cagent::bench {

namespace {

// snprintf into a std::string; reports are small and built once per run.
template <typename... Args>
void appendf(std::string& out, const char* format, Args... args) {
  char buffer[1024];
  const int n = std::snprintf(buffer, sizeof buffer, format, args...);
  if (n > 0) out.append(buffer, std::min(static_cast<std::size_t>(n), sizeof buffer - 1));
}

double to_us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// JSON string escaping for the few free-text fields (label, server).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      appendf(out, "\\u%04x", static_cast<unsigned>(u));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::size_t LatencyHistogram::bucket_of(std::uint64_t value) noexcept {
  if (value < kSub) return static_cast<std::size_t>(value);
  // value in [2^e, 2^(e+1)), e >= kSubBits: keep the top kSubBits+1 bits.
  const unsigned e = static_cast<unsigned>(std::bit_width(value)) - 1;
  const unsigned shift = e - kSubBits;
  return static_cast<std::size_t>(kSub * shift + (value >> shift));
}

std::uint64_t LatencyHistogram::bucket_upper(std::size_t bucket) noexcept {
  if (bucket < kSub) return bucket;
  // Inverse of bucket_of: bucket = kSub*shift + top, top in [kSub, 2*kSub).
  const std::size_t shift = bucket / kSub - 1;
  const std::uint64_t top = bucket - kSub * shift;
  const std::uint64_t low = top << shift;
  const std::uint64_t width = std::uint64_t{1} << shift;
  return low + (width - 1);  // wraps to UINT64_MAX only for the very last bucket
}

void LatencyHistogram::record(std::uint64_t nanoseconds) noexcept {
  ++counts_[bucket_of(nanoseconds)];
  ++count_;
  min_ = std::min(min_, nanoseconds);
  max_ = std::max(max_, nanoseconds);
  sum_ += static_cast<long double>(nanoseconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const noexcept {
  return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

std::uint64_t LatencyHistogram::percentile(double percent) const noexcept {
  if (count_ == 0) return 0;
  if (percent <= 0) return min_;
  percent = std::min(percent, 100.0);
  // Rank of the sample (1-based) that the percentile points at; the epsilon
  // keeps 99.9 % of 1000 at rank 999 despite binary floating point.
  auto rank = static_cast<std::uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_) - 1e-9));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucket_upper(i), min_, max_);
  }
  return max_;
}

std::string format_table(const Report& r) {
  std::string out;
  if (!r.label.empty()) appendf(out, "scenario     %s\n", r.label.c_str());
  appendf(out, "server       %s (%s)\n", r.server.c_str(), r.transport.c_str());
  appendf(out, "duration     %.3f s\n", r.seconds);
  appendf(out, "sent         %llu\n", static_cast<unsigned long long>(r.sent));
  appendf(out, "answered     %llu  (noerror %llu, nxdomain %llu, servfail %llu, refused %llu, other %llu)\n",
          static_cast<unsigned long long>(r.answered), static_cast<unsigned long long>(r.noerror),
          static_cast<unsigned long long>(r.nxdomain), static_cast<unsigned long long>(r.servfail),
          static_cast<unsigned long long>(r.refused_rcode), static_cast<unsigned long long>(r.other_rcode));
  appendf(out, "lost         %llu\n", static_cast<unsigned long long>(r.lost));
  appendf(out, "malformed    %llu\n", static_cast<unsigned long long>(r.malformed));
  appendf(out, "addresses    %llu\n", static_cast<unsigned long long>(r.addresses));
  appendf(out, "qps          %.0f\n", r.qps());
  appendf(out, "latency us   min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
          to_us(r.latency.min()), r.latency.mean() / 1000.0, to_us(r.latency.percentile(50)),
          to_us(r.latency.percentile(90)), to_us(r.latency.percentile(99)),
          to_us(r.latency.percentile(99.9)), to_us(r.latency.max()));
  if (r.connect_enabled) {
    const auto& c = r.connect;
    appendf(out, "connects     %llu attempted, %llu succeeded, %llu refused, %llu unreachable, %llu timed out, %llu other, %llu skipped\n",
            static_cast<unsigned long long>(c.attempted), static_cast<unsigned long long>(c.succeeded),
            static_cast<unsigned long long>(c.refused), static_cast<unsigned long long>(c.unreachable),
            static_cast<unsigned long long>(c.timed_out), static_cast<unsigned long long>(c.other),
            static_cast<unsigned long long>(c.skipped));
  }
  return out;
}

std::string format_json(const Report& r) {
  std::string out = "{";
  out += "\"label\":" + json_string(r.label);
  out += ",\"server\":" + json_string(r.server);
  out += ",\"transport\":" + json_string(r.transport);
  appendf(out, ",\"seconds\":%.6f", r.seconds);
  appendf(out, ",\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"malformed\":%llu,\"addresses\":%llu",
          static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.answered),
          static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.malformed),
          static_cast<unsigned long long>(r.addresses));
  appendf(out, ",\"rcodes\":{\"noerror\":%llu,\"nxdomain\":%llu,\"servfail\":%llu,\"refused\":%llu,\"other\":%llu}",
          static_cast<unsigned long long>(r.noerror), static_cast<unsigned long long>(r.nxdomain),
          static_cast<unsigned long long>(r.servfail), static_cast<unsigned long long>(r.refused_rcode),
          static_cast<unsigned long long>(r.other_rcode));
  appendf(out, ",\"qps\":%.1f", r.qps());
  appendf(out, ",\"latency_us\":{\"min\":%.3f,\"mean\":%.3f", to_us(r.latency.min()), r.latency.mean() / 1000.0);
  appendf(out, ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99.9\":%.3f,\"max\":%.3f}",
          to_us(r.latency.percentile(50)), to_us(r.latency.percentile(90)), to_us(r.latency.percentile(99)),
          to_us(r.latency.percentile(99.9)), to_us(r.latency.max()));
  if (r.connect_enabled) {
    const auto& c = r.connect;
    appendf(out, ",\"connect\":{\"attempted\":%llu,\"succeeded\":%llu,\"refused\":%llu,\"unreachable\":%llu,\"timed_out\":%llu,\"other\":%llu,\"skipped\":%llu,\"failed\":%llu}",
            static_cast<unsigned long long>(c.attempted), static_cast<unsigned long long>(c.succeeded),
            static_cast<unsigned long long>(c.refused), static_cast<unsigned long long>(c.unreachable),
            static_cast<unsigned long long>(c.timed_out), static_cast<unsigned long long>(c.other),
            static_cast<unsigned long long>(c.skipped),
            static_cast<unsigned long long>(c.failed()));
  }
  out += "}\n";
  return out;
}

std::string format_percentile_curve(const LatencyHistogram& h) {
  std::string out;
  if (h.count() == 0) return out;
  // 0..90 in steps of 5, then each further "nine" in ten steps, up to the
  // resolution the sample count supports.
  for (int p = 0; p < 90; p += 5) appendf(out, "%.6f %.3f\n", static_cast<double>(p), to_us(h.percentile(p)));
  const double finest = 100.0 * (1.0 - 1.0 / static_cast<double>(h.count()));
  for (int nines = 1; nines <= 6; ++nines) {
    const double base = 100.0 * (1.0 - std::pow(10.0, -nines));
    const double next = 100.0 * (1.0 - std::pow(10.0, -(nines + 1)));
    for (int step = 0; step < 10; ++step) {
      const double p = base + (next - base) * step / 10.0;
      if (p > finest) break;
      appendf(out, "%.6f %.3f\n", p, to_us(h.percentile(p)));
    }
  }
  appendf(out, "%.6f %.3f\n", 100.0, to_us(h.max()));
  return out;
}

}  // namespace cagent::bench
