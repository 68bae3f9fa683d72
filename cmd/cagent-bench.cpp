// cagent-bench: DNS load generator / latency meter and fake upstream.
// Parses argv, runs the chosen mode, maps errors to exit codes
// (0 ok, 1 runtime error, 2 usage error).
#include "names.hpp"
#include "options.hpp"
#include "query.hpp"
#include "server.hpp"

#include <cstdio>
#include <exception>
#include <fstream>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
  using namespace cagent::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    const Command command = parse_command(args);
    if (const auto* help = std::get_if<HelpRequest>(&command)) {
      std::fputs(help->text.c_str(), stdout);
      return 0;
    }
    if (const auto* serve_options = std::get_if<ServeOptions>(&command)) {
      serve(*serve_options);
      return 0;
    }
    const auto& q = std::get<QueryOptions>(command);
    const NameSource names = q.names_file.empty()
                                 ? NameSource::generated(q.generate, q.zone, q.salt.empty() ? random_salt() : q.salt)
                                 : NameSource::from_file(q.names_file);
    const Report report = run_query(q, names);
    std::fputs((q.json ? format_json(report) : format_table(report)).c_str(), stdout);
    if (!q.curve_file.empty()) {
      std::ofstream curve(q.curve_file);
      curve << format_percentile_curve(report.latency);
      if (!curve) throw std::runtime_error("cannot write " + q.curve_file);
    }
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "cagent-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cagent-bench: %s\n", e.what());
    return 1;
  }
}
