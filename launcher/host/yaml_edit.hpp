#pragma once
// The config editor behind `cagent allow --save`: adds names to the
// `domains` list of a cagent YAML file as text, so the rest of the file —
// comments, order, quoting, blank lines — stays exactly as the user wrote
// it. Pure: text in, text out.
//
//   text ─parse (yaml-cpp: must be a mapping whose domains, if any, is a
//   list)─▶ names not yet listed ─▶ lines appended to the domains block (or
//   a new block at the end) ─▶ re-parsed: the result must list exactly the
//   old domains plus the new ones, else nothing is written.

#include <stdexcept>
#include <string>
#include <vector>

namespace cagent::launcher::host {

struct YamlEditError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `text` with `names` (normalized patterns) added to `domains`. Names
// already listed are skipped: adding twice returns the text unchanged.
// Throws YamlEditError when the file cannot be parsed, is not a mapping,
// or its domains is not a block list this editor can extend safely (a flow
// list `[a, b]` is refused: edit it by hand).
std::string add_domains(const std::string& text, const std::vector<std::string>& names);

}  // namespace cagent::launcher::host
