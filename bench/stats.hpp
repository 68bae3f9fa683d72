#pragma once
// bench/stats — latency histogram and the benchmark report (pure, no I/O).
//
// Data flow: the load generator records one latency per answered query into
// a LatencyHistogram (fixed memory, O(1) record, no allocation on the hot
// path); at the end the counters and the histogram become a Report, which is
// rendered as a human table or as JSON. Percentiles come from log-linear
// buckets with 128 sub-buckets per power of two, so any reported value is
// within 1/128 (< 0.8 %) above the true sample.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cagent::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;  // 128
  static constexpr std::size_t kBuckets = kSub * (64 - kSubBits + 1);

  void record(std::uint64_t nanoseconds) noexcept;
  void merge(const LatencyHistogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;

  // Smallest bucket bound v such that at least `percent` % of the samples are
  // <= v (capped at the exact maximum). 0 when empty. percent in [0, 100].
  std::uint64_t percentile(double percent) const noexcept;

  // Bucket helpers, exposed for the unit tests.
  static std::size_t bucket_of(std::uint64_t value) noexcept;
  static std::uint64_t bucket_upper(std::size_t bucket) noexcept;  // inclusive

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

// Outcome of the TCP connects made right after each answer
// (--connect-after-answer). Anything but `succeeded` means the firewall was
// not ready for an address the resolver had already handed out.
struct ConnectStats {
  std::uint64_t attempted = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t refused = 0;      // ECONNREFUSED: TCP reset (nft reject with tcp reset)
  std::uint64_t unreachable = 0;  // EHOSTUNREACH/ENETUNREACH/EACCES/EPERM: ICMP reject or local drop
  std::uint64_t timed_out = 0;
  std::uint64_t other = 0;
  std::uint64_t skipped = 0;      // not attempted: too many connects already in flight
  std::uint64_t failed() const noexcept { return refused + unreachable + timed_out + other; }
};

struct Report {
  std::string label;        // free text (scenario name), may be empty
  std::string server;       // ADDR:PORT
  std::string transport;    // "udp" | "tcp"
  double seconds = 0;       // wall time from first send to last answer/timeout
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;   // any well-formed matching response
  std::uint64_t lost = 0;       // timed out (or connection lost) without an answer
  std::uint64_t noerror = 0;
  std::uint64_t nxdomain = 0;
  std::uint64_t servfail = 0;
  std::uint64_t refused_rcode = 0;
  std::uint64_t other_rcode = 0;
  std::uint64_t malformed = 0;  // responses dropped: unparsable, wrong id or question
  std::uint64_t addresses = 0;  // A/AAAA records received
  bool connect_enabled = false;
  ConnectStats connect;
  LatencyHistogram latency;

  double qps() const noexcept { return seconds > 0 ? static_cast<double>(answered) / seconds : 0; }
};

// The percentiles every report shows, in this order.
inline constexpr std::array<double, 4> kReportPercentiles{50.0, 90.0, 99.0, 99.9};

std::string format_table(const Report& report);
std::string format_json(const Report& report);

// Rows "percentile latency_us" for a latency-vs-percentile plot, sampled
// densely towards the tail (HdrHistogram style: 1/(1-p) on a log axis).
std::string format_percentile_curve(const LatencyHistogram& histogram);

}  // namespace cagent::bench
