#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "bench/stats.hpp"

#include <cstdio>
#include <initializer_list>
#include <random>
#include <string>

using cagent::bench::LatencyHistogram;
using cagent::bench::Report;

TEST_CASE("bucket_of and bucket_upper are inverse and monotonic") {
  std::size_t previous = 0;
  for (std::uint64_t v : std::initializer_list<std::uint64_t>{0, 1, 127, 128, 129, 255, 256, 257, 1000, 123456789,
                          (std::uint64_t{1} << 40) + 12345, UINT64_MAX}) {
    const auto b = LatencyHistogram::bucket_of(v);
    CHECK(b < LatencyHistogram::kBuckets);
    CHECK(b >= previous);
    previous = b;
    // v lies in its bucket, and the bucket's upper bound is within 1/128 of v.
    const auto upper = LatencyHistogram::bucket_upper(b);
    CHECK(upper >= v);
    CHECK(static_cast<double>(upper - v) <= static_cast<double>(v) / 128.0 + 1.0);
    if (b > 0) CHECK(LatencyHistogram::bucket_upper(b - 1) < v);
  }
  // Exact below 128.
  for (std::uint64_t v = 0; v < 128; ++v) CHECK(LatencyHistogram::bucket_upper(LatencyHistogram::bucket_of(v)) == v);
}

TEST_CASE("percentiles of 1..1000 are within bucket precision") {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v * 1000);  // 1 us .. 1 ms
  CHECK(h.count() == 1000);
  CHECK(h.min() == 1000);
  CHECK(h.max() == 1'000'000);
  CHECK(h.mean() == doctest::Approx(500'500.0));
  const auto check = [&](double p, double expected) {
    const double got = static_cast<double>(h.percentile(p));
    CHECK(got >= expected);
    CHECK(got <= expected * (1.0 + 1.0 / 128.0) + 1);
  };
  check(50, 500'000);
  check(90, 900'000);
  check(99, 990'000);
  check(99.9, 999'000);
  CHECK(h.percentile(100) == 1'000'000);
  CHECK(h.percentile(0) == 1000);
}

TEST_CASE("empty histogram reports zeros") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
  CHECK(cagent::bench::format_percentile_curve(h).empty());
}

TEST_CASE("a single outlier shows at p99.9 and max but not at p99") {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.record(10'000);
  h.record(5'000'000);
  CHECK(h.percentile(99) <= 10'100);
  CHECK(h.percentile(99.9) <= 10'100);  // rank 999 is still a fast one
  CHECK(h.percentile(99.95) == 5'000'000);
  CHECK(h.max() == 5'000'000);
}

TEST_CASE("merge equals recording everything in one histogram") {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> dist(1, 10'000'000);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 5000; ++i) {
    const auto v = dist(rng);
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.min() == all.min());
  CHECK(a.max() == all.max());
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9}) CHECK(a.percentile(p) == all.percentile(p));
}

TEST_CASE("report renders as a table and as JSON") {
  Report r;
  r.label = "dnsguard \"miss\"";
  r.server = "127.0.0.1:53";
  r.transport = "udp";
  r.seconds = 2.0;
  r.sent = 1000;
  r.answered = 990;
  r.lost = 10;
  r.noerror = 990;
  for (int i = 0; i < 990; ++i) r.latency.record(100'000);
  CHECK(r.qps() == doctest::Approx(495.0));

  const auto table = cagent::bench::format_table(r);
  CHECK(table.find("sent         1000") != std::string::npos);
  CHECK(table.find("lost         10") != std::string::npos);
  CHECK(table.find("p50 100.0") != std::string::npos);
  CHECK(table.find("connects") == std::string::npos);

  r.connect_enabled = true;
  r.connect.attempted = 990;
  r.connect.succeeded = 988;
  r.connect.refused = 2;
  const auto json = cagent::bench::format_json(r);
  CHECK(json.find("\"label\":\"dnsguard \\\"miss\\\"\"") != std::string::npos);
  CHECK(json.find("\"answered\":990") != std::string::npos);
  CHECK(json.find("\"qps\":495.0") != std::string::npos);
  CHECK(json.find("\"p50\":100.000") != std::string::npos);
  CHECK(json.find("\"refused\":2,") != std::string::npos);
  CHECK(json.find("\"failed\":2}") != std::string::npos);
  CHECK(json.back() == '\n');
}

TEST_CASE("percentile curve is sorted and ends at the max") {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v * 10);
  const auto curve = cagent::bench::format_percentile_curve(h);
  double last_p = -1, last_v = -1;
  std::size_t lines = 0;
  std::size_t pos = 0;
  while (pos < curve.size()) {
    const auto nl = curve.find('\n', pos);
    REQUIRE(nl != std::string::npos);
    double p = 0, v = 0;
    REQUIRE(std::sscanf(curve.substr(pos, nl - pos).c_str(), "%lf %lf", &p, &v) == 2);
    CHECK(p > last_p);
    CHECK(v >= last_v);
    last_p = p;
    last_v = v;
    ++lines;
    pos = nl + 1;
  }
  CHECK(lines > 40);
  CHECK(last_p == 100.0);
  CHECK(last_v == doctest::Approx(1000.0));  // 1'000'000 ns
}
