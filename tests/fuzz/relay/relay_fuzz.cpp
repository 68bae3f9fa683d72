// Fuzz target for the secret relay's hostile-input path: the request
// parser (fed whole and in random pieces: both must give the same events)
// and the header rewriting of every head it yields (a forwarded head must
// parse again as one request, and a secret's value may appear in it only on
// that secret's own host).
//
// libFuzzer-compatible entry point; without libFuzzer, main() is a corpus
// runner with HTTP-minded mutations from a fixed seed, bounded by
// --iterations and --seconds.
//
//   relay_request_fuzz [--iterations N] [--seconds S] CORPUS_DIR...

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "launcher/relay/http_request.hpp"
#include "launcher/relay/rewrite.hpp"

namespace relay = cagent::relay;

namespace {

const std::vector<relay::Secret>& secrets() {
  static const std::vector<relay::Secret> s = {
      {"s", "cagent-secret-s-0123", "REAL-VALUE-S", {"api.secret.test"}},
      {"t", "cagent-secret-t-4567", "REAL-VALUE-T", {"other.test"}},
  };
  return s;
}

struct Events {
  std::vector<std::string> heads;
  std::string body;
  int ends = 0;
  std::string error;
};

Events run(std::span<const std::uint8_t> in, const std::vector<std::size_t>& cuts) {
  Events out;
  relay::RequestParser parser;
  std::vector<relay::RequestParser::Event> events;
  std::size_t from = 0;
  std::vector<std::size_t> bounds = cuts;
  bounds.push_back(in.size());
  for (std::size_t to : bounds) {
    if (to < from || to > in.size()) continue;
    events.clear();
    const bool ok = parser.feed(in.subspan(from, to - from), events);
    for (const auto& e : events) {
      if (e.kind == relay::RequestParser::Event::Kind::head) {
        out.heads.push_back(e.head.serialize());
        for (const char* host : {"api.secret.test", "other.test"}) {
          const relay::Verdict v = relay::check_and_rewrite(e.head, host, secrets());
          if (!v.forward) {
            if (v.reason.empty() || !v.head.empty()) __builtin_trap();
            continue;
          }
          // Values only at home.
          const bool s_here = std::string_view(host) == "api.secret.test";
          if (!s_here && v.head.find("REAL-VALUE-S") != std::string::npos &&
              e.head.serialize().find("REAL-VALUE-S") == std::string::npos)
            __builtin_trap();
          if (s_here && v.head.find("REAL-VALUE-T") != std::string::npos &&
              e.head.serialize().find("REAL-VALUE-T") == std::string::npos)
            __builtin_trap();
          // What goes to the server is one well-formed head, nothing more.
          relay::RequestParser again;
          std::vector<relay::RequestParser::Event> reparsed;
          const auto* p = reinterpret_cast<const std::uint8_t*>(v.head.data());
          if (!again.feed({p, v.head.size()}, reparsed) || reparsed.empty() ||
              reparsed.front().kind != relay::RequestParser::Event::Kind::head ||
              reparsed.front().head.headers.size() != e.head.headers.size())
            __builtin_trap();
        }
      } else if (e.kind == relay::RequestParser::Event::Kind::body) {
        out.body += e.bytes();
      } else {
        ++out.ends;
      }
    }
    if (!ok) {
      out.error = parser.error();
      if (out.error.empty()) __builtin_trap();
      break;
    }
    from = to;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  const Events whole = run(in, {});
  if (whole.body.size() > size) __builtin_trap();  // framing is never invented
  // The same stream in pieces (cut points from the data itself).
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < size && cuts.size() < 8; i += 1 + (data[i] % 97)) cuts.push_back(i);
  const Events split = run(in, cuts);
  if (split.heads != whole.heads || split.body != whole.body || split.ends != whole.ends || split.error != whole.error)
    __builtin_trap();
  return 0;
}

#ifndef CAGENT_LIBFUZZER
namespace {

// Mutations that matter to an HTTP parser: line ends, separators, digits,
// header lines copied or dropped, bytes flipped.
std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> in, std::mt19937& rng) {
  static const std::string tokens[] = {"\r\n", "\n", "\r", ":", " ", "\t", "0", "ffffffff", ";", "chunked",
                                       "Content-Length: ", "Transfer-Encoding: ", "Host: other.test\r\n",
                                       "cagent-secret-t-4567", "cagent-secret-s-0123", "Upgrade: x\r\n"};
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t at = in.empty() ? 0 : rng() % in.size();
    switch (rng() % 4) {
      case 0:
        if (!in.empty()) in[at] = static_cast<std::uint8_t>(rng());
        break;
      case 1: {
        const std::string& t = tokens[rng() % std::size(tokens)];
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), t.begin(), t.end());
        break;
      }
      case 2:
        if (!in.empty()) in.erase(in.begin() + static_cast<std::ptrdiff_t>(at),
                                  in.begin() + static_cast<std::ptrdiff_t>(std::min(in.size(), at + 1 + rng() % 8)));
        break;
      default:
        if (!in.empty()) in.resize(at);
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
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::strtod(argv[++i], nullptr);
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        std::ifstream f(entry.path(), std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      }
    }
  }
  if (corpus.empty()) return 2;
  for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  std::mt19937 rng(20261207);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  long done = 0;
  for (; done < iterations && std::chrono::steady_clock::now() < deadline; ++done) {
    const auto input = mutate(corpus[rng() % corpus.size()], rng);
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::printf("relay_request_fuzz: %ld inputs, no crash\n", done);
  return 0;
}
#endif
