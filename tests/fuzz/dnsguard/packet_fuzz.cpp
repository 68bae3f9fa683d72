// Fuzz target for dnsguard's packet path: request classification, local
// answers, the upstream query, response analysis (CNAME chain, SVCB hints,
// compression) and answer rewriting, driven through QueryEngine exactly as
// the server drives it; and the connection gate's parsers (ClientHello,
// HTTP head, the server's first message, the hello after a retry request).
//
// libFuzzer-compatible entry point; without libFuzzer, main() is a corpus
// runner: every file in the given directories, then mutated inputs from a
// fixed seed, bounded by --iterations and --seconds.
//
//   dnsguard_packet_fuzz [--iterations N] [--seconds S] CORPUS_DIR...

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "dnsguard/engine.hpp"
#include "dnsguard/gate_parse.hpp"
#include "dnsguard/message.hpp"

namespace dg = cagent::dnsguard;

namespace {

class NullSink : public dg::AnswerSink {
 public:
  bool allow(std::span<const dg::AllowedAddress> addresses) noexcept override {
    // Touch every byte so ASan sees out-of-bounds spans.
    for (const auto& a : addresses) checksum += a.bytes[15] + a.timeout_s;
    return (checksum & 7) != 0;  // sometimes fail: exercises the SERVFAIL path
  }
  std::uint64_t checksum = 0;
};

struct Harness {
  dg::Config config;
  NullSink sink;
  dg::Counters counters;
  dg::Logger log{"/dev/null", dg::LogLevel::error};
  std::unique_ptr<dg::QueryEngine> engine;
  dg::ResponseAnalyzer analyzer;
  dg::ResponseInfo info;
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(dg::kMaxMessage);
  dg::AnswerCache::Clock::time_point now{};

  Harness() {
    config.allow = {"www.example.test", "*.cdn.test", "*.test"};
    config.cache_size = 64;
    engine = std::make_unique<dg::QueryEngine>(config, sink, log, counters);
  }
};

Harness& harness() {
  static Harness h;
  return h;
}

void check(const dg::GateVerdict& v) {
  if (v.status == dg::GateParse::done && (v.name.size == 0 || v.name.size > 253)) __builtin_trap();
  if (v.status == dg::GateParse::reject && v.reason[0] == '\0') __builtin_trap();
}

// The bytes as the first of a connection the gate inspects, as
// the server's answer to a ClientHello, and as a client's bytes after a
// retry request (a first hello, then what follows it): a decision must name
// a valid name or give a reason, and never point past the bytes.
void gate_parsers(std::span<const std::uint8_t> in) {
  static std::vector<std::uint8_t> scratch(dg::kMaxClientHello);
  check(dg::parse_http_head(in));
  const dg::GateVerdict first = dg::parse_client_hello(in, scratch);
  check(first);
  const dg::ServerVerdict answer = dg::parse_server_hello(in);
  if (answer.status == dg::GateParse::done && answer.end > in.size()) __builtin_trap();
  if (answer.status == dg::GateParse::reject && answer.reason[0] == '\0') __builtin_trap();
  if (first.status != dg::GateParse::done) return;
  if (first.end == 0 || first.end > in.size()) __builtin_trap();
  const auto rest = in.subspan(first.end);
  const dg::GateVerdict second = dg::parse_retry_client_hello(rest, scratch, first);
  check(second);
  if (second.status == dg::GateParse::done && (second.end > rest.size() || second.name.view() != first.name.view()))
    __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness& h = harness();
  h.now += std::chrono::milliseconds(700);
  std::span<const std::uint8_t> in(data, size);
  if (size > dg::kMaxMessage) return 0;

  // 1. As a client query.
  dg::Query q;
  auto local = h.engine->handle_local(in, q, dg::IpEndpoint{}, (size & 1) != 0, h.out, h.now);
  if (local.action == dg::QueryEngine::Action::needs_upstream) {
    std::array<std::uint8_t, 512> upq{};
    (void)h.engine->upstream_query(in, q, upq);
    // 2. The same bytes as the upstream's answer to that query (so the
    // question matches and analysis goes deep), then a cache hit.
    std::vector<std::uint8_t> answer(in.begin(), in.end());
    if (answer.size() >= 3) answer[2] |= 0x80;  // QR
    (void)h.engine->finish(in, q, false, answer, h.out, h.now);
    (void)h.engine->handle_local(in, q, dg::IpEndpoint{}, false, h.out, h.now);
  }

  // 3. As a response to a fixed question, with rewriting on a copy.
  dg::WireName qname;
  std::size_t pos = dg::kHeaderSize;
  if (size > dg::kHeaderSize && dg::read_name(in, pos, qname) && pos + 2 <= size) {
    std::uint16_t qtype = dg::read16(in, pos);
    if (h.analyzer.analyze(in, qname, qtype, h.info) == dg::ResponseAnalyzer::Result::ok) {
      std::vector<std::uint8_t> copy(in.begin(), in.end());
      dg::rewrite_ttls(copy, h.info, 3600, 7);
      if (local.action != dg::QueryEngine::Action::drop && q.question_end != 0)
        (void)dg::adapt_for_client(copy, copy.size(), h.info, in, q, 512);
      // Stripping the strays must give a message that analyzes again with
      // no strays left.
      if (!h.info.strays.empty()) {
        std::vector<std::uint8_t> stripped(dg::kMaxMessage);
        const std::size_t n = dg::strip_records(in, h.info.strays, stripped);
        if (n != 0) {
          stripped.resize(n);
          if (h.analyzer.analyze(stripped, qname, qtype, h.info) != dg::ResponseAnalyzer::Result::ok ||
              !h.info.strays.empty())
            __builtin_trap();
        }
      }
    }
  }

  // 4. The gate's parsers, on the whole input and on a prefix (as if more
  // were to come).
  for (std::size_t cut : {size, size / 2}) gate_parsers(in.first(cut));
  return 0;
}

#ifndef CAGENT_LIBFUZZER
namespace {

std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> in, std::mt19937& rng,
                                 const std::vector<std::vector<std::uint8_t>>& corpus) {
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 7) {
      case 0:
        if (!in.empty()) in[rng() % in.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (!in.empty()) in[rng() % in.size()] = static_cast<std::uint8_t>(rng());
        break;
      case 2:
        if (!in.empty()) in.resize(rng() % in.size());
        break;
      case 3:
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(in.empty() ? 0 : rng() % in.size()),
                  static_cast<std::uint8_t>(rng()));
        break;
      case 4:  // interesting bytes: compression pointers, zero, lengths
        if (!in.empty()) {
          static const std::uint8_t interesting[] = {0xC0, 0x0C, 0x00, 0x3F, 0x40, 0xFF, 0x01, 0x29};
          in[rng() % in.size()] = interesting[rng() % sizeof interesting];
        }
        break;
      case 5: {  // splice with another corpus entry
        const auto& other = corpus[rng() % corpus.size()];
        if (!other.empty() && !in.empty()) {
          std::size_t at = rng() % in.size();
          std::size_t from = rng() % other.size();
          in.resize(at);
          in.insert(in.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        }
        break;
      }
      default:  // header counts
        if (in.size() >= 12) in[4 + (rng() % 8)] = static_cast<std::uint8_t>(rng() % 4);
        break;
    }
  }
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 200000;
  double seconds = 60;
  std::vector<std::vector<std::uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::strtod(argv[++i], nullptr);
    } else {
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(arg, ec)) {
        std::ifstream f(entry.path(), std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      }
      if (ec) {
        std::fprintf(stderr, "dnsguard_packet_fuzz: %s: %s\n", arg.c_str(), ec.message().c_str());
        return 1;
      }
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "dnsguard_packet_fuzz: empty corpus\n");
    return 1;
  }
  for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  std::mt19937 rng(20240601);  // fixed seed: a failure reproduces
  auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (; done < iterations; ++done) {
    if ((done & 1023) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
      break;
    auto input = mutate(corpus[rng() % corpus.size()], rng, corpus);
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::printf("dnsguard_packet_fuzz: %zu corpus files, %ld mutated inputs, no crash\n",
              corpus.size(), done);
  return 0;
}
#endif
