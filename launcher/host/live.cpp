#include "launcher/host/live.hpp"

#include <poll.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <ostream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/atomic_file.hpp"
#include "dnsguard/contracts.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/check.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"
#include "launcher/host/learn.hpp"
#include "launcher/host/sha256.hpp"
#include "launcher/host/session_record.hpp"
#include "launcher/host/text.hpp"
#include "launcher/host/watch.hpp"
#include "launcher/host/workspace_approval.hpp"
#include "launcher/host/yaml_edit.hpp"

namespace cagent::launcher::host {
namespace {

constexpr const char* kDnsguard = "/usr/local/bin/dnsguard";

// The word dnsguard --control takes for `op` (its parse_control_op's).
const char* op_word(dnsguard::ControlOp op) {
  switch (op) {
    case dnsguard::ControlOp::allow: return "allow";
    case dnsguard::ControlOp::deny: return "deny";
    case dnsguard::ControlOp::list: return "list";
    case dnsguard::ControlOp::watch: return "watch";
    case dnsguard::ControlOp::refuse: return "refuse";
  }
  return "list";
}

// `--NAME VALUE` or `--NAME=VALUE` at args[i] (i moves past a separate
// value): the value, never empty; nullopt when args[i] is another word.
std::optional<std::string> option_value(const std::vector<std::string>& args, std::size_t& i, const std::string& name) {
  const std::string& a = args[i];
  const std::string flag = "--" + name;
  std::string value;
  if (a == flag) {
    if (i + 1 >= args.size()) throw UsageError("option " + flag + " needs a value");
    value = args[++i];
  } else if (a.rfind(flag + "=", 0) == 0) {
    value = a.substr(flag.size() + 1);
  } else {
    return std::nullopt;
  }
  if (value.empty()) throw UsageError("option " + flag + " needs a value");
  return value;
}

}  // namespace

std::optional<LiveCommand> parse_live_command(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  LiveCommand c;
  if (args[0] == "allow") c.kind = LiveCommand::Kind::allow;
  else if (args[0] == "deny") c.kind = LiveCommand::Kind::deny;
  else if (args[0] == "ps") c.kind = LiveCommand::Kind::ps;
  else if (args[0] == "log") c.kind = LiveCommand::Kind::log;
  else if (args[0] == "check") c.kind = LiveCommand::Kind::check;
  else if (args[0] == "kube") c.kind = LiveCommand::Kind::kube;
  else if (args[0] == "watch") c.kind = LiveCommand::Kind::watch;
  else return std::nullopt;
  const bool policy = c.kind == LiveCommand::Kind::allow || c.kind == LiveCommand::Kind::deny;
  std::vector<std::string> session_args;  // check: the ordinary options
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (policy) {
      if (auto v = option_value(args, i, "session")) {
        c.session = std::move(v);
        continue;
      }
    }
    if ((c.kind == LiveCommand::Kind::ps || c.kind == LiveCommand::Kind::log) && a == "--json") {
      c.json = true;
      continue;
    }
    if (c.kind == LiveCommand::Kind::allow && (a == "--save" || a.rfind("--save=", 0) == 0)) {
      const std::string where = a == "--save" ? "workspace" : a.substr(7);
      if (where == "workspace") c.save = LiveCommand::Save::workspace;
      else if (where == "global") c.save = LiveCommand::Save::global;
      else throw UsageError("--save takes workspace or global, not '" + where + "'");
      continue;
    }
    if (c.kind == LiveCommand::Kind::kube) {
      // Up to "--" the kube options and the ordinary ones; after it the command.
      if (a == "--") {
        session_args.insert(session_args.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      if (a == "--job") c.kube.job = true;
      else if (a == "--classic-sidecar") c.kube.classic_sidecar = true;
      else if (auto claim = option_value(args, i, "claim")) c.kube.claim = std::move(claim);
      else if (auto image = option_value(args, i, "image")) c.kube.image = std::move(image);
      else session_args.push_back(a);
      continue;
    }
    if (c.kind == LiveCommand::Kind::allow && a == "--from-learned") {
      c.from_learned = true;
      continue;
    }
    if (c.kind == LiveCommand::Kind::check) {
      if (auto v = option_value(args, i, "name")) {
        c.check_name = std::move(v);
      } else {
        session_args.push_back(a);
      }
      continue;
    }
    if (c.kind == LiveCommand::Kind::watch && a == "--all") {
      c.all = true;
      continue;
    }
    if (c.kind == LiveCommand::Kind::log && (a == "-f" || a == "--follow")) {
      c.follow = true;
      continue;
    }
    if (a.rfind("-", 0) == 0) throw UsageError("unknown option '" + a + "' for cagent " + args[0]);
    if (c.kind == LiveCommand::Kind::ps) throw UsageError("unexpected argument '" + a + "' for cagent ps");
    if (c.kind == LiveCommand::Kind::log || c.kind == LiveCommand::Kind::watch) {
      const bool hex = !a.empty() && a.size() <= 64 &&
                       std::all_of(a.begin(), a.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
      if (c.session || !hex) {
        throw UsageError(c.kind == LiveCommand::Kind::log ? "usage: cagent log [SESSION] [--json]"
                                                          : "usage: cagent watch [--all] [SESSION]");
      }
      c.session = a;
      continue;
    }
    try {
      std::string n = dnsguard::normalize_pattern(a);
      if (std::find(c.names.begin(), c.names.end(), n) == c.names.end()) c.names.push_back(std::move(n));
    } catch (const dnsguard::PatternError& e) {
      throw UsageError("invalid pattern '" + a + "': " + e.what());
    }
  }
  if (policy && c.names.empty() && !c.from_learned)
    throw UsageError("usage: cagent " + args[0] + " NAME… [--session ID]" +
                     (c.kind == LiveCommand::Kind::allow ? " (or --from-learned)" : ""));
  if (c.kind == LiveCommand::Kind::kube) {
    c.check_cli = parse_cli(session_args);
    const CliOptions& o = c.check_cli;
    if (o.help || o.version || o.reset || o.print_config || o.dry_run) {
      throw UsageError("cagent kube takes its own options and those of a session, not --help, --version, "
                       "--reset, --print-config or --dry-run");
    }
    if (!o.flags.extra_args.empty()) throw UsageError("cagent kube: --arg gives docker run arguments; a Pod has none");
    if (c.kube.claim && !valid_kube_name(*c.kube.claim)) {
      throw UsageError("cagent kube: --claim " + *c.kube.claim + " is not a valid claim name (lower case letters, "
                       "digits, '-' and '.')");
    }
  }
  if (c.kind == LiveCommand::Kind::check) {
    c.check_cli = parse_cli(session_args);
    const CliOptions& o = c.check_cli;
    if (!o.command.empty()) throw UsageError("cagent check runs its own checks: no command after --");
    if (o.help || o.version || o.reset || o.print_config || o.dry_run) {
      throw UsageError("cagent check takes --name and the options of a session, not --help, --version, "
                       "--reset, --print-config or --dry-run");
    }
  }
  return c;
}

std::vector<RunningCage> parse_running_cages(const std::string& out) {
  std::vector<RunningCage> cages;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 >= line.size()) continue;
    RunningCage c;
    c.container = line.substr(0, tab);
    c.session = line.substr(tab + 1);
    cages.push_back(std::move(c));
  }
  return cages;
}

std::vector<RunningCage> select_cages(const std::vector<RunningCage>& cages, const std::filesystem::path& workspace,
                                      const std::optional<std::string>& session) {
  std::vector<RunningCage> out;
  for (const RunningCage& c : cages) {
    if (session ? c.session == *session : c.workspace == workspace) out.push_back(c);
  }
  if (out.empty()) {
    throw UsageError(session ? "unknown session " + *session + " (no running cage has it; see cagent ps)"
                             : "no running cage for this workspace (" + workspace.string() + ")");
  }
  return out;
}

std::vector<std::string> control_argv(const RunningCage& cage, std::string_view op,
                                      const std::vector<std::string>& names) {
  // -u 0: the control socket serves root only; the agent's uid cannot.
  // The socket where dnsguard puts it: in the session's log directory,
  // which the cage sees at kContainerLogDir (the session policy's log.file
  // is there; the policy contract test holds the two together).
  const std::string socket = dnsguard::control_socket_path(kContainerLogDir).string();
  std::vector<std::string> argv{"docker", "exec", "-u", "0", cage.container, kDnsguard, "--control",
                                socket, std::string(op)};
  argv.insert(argv.end(), names.begin(), names.end());
  return argv;
}

std::vector<std::string> control_argv(const RunningCage& cage, const LiveCommand& command) {
  return control_argv(cage, command.kind == LiveCommand::Kind::allow ? "allow" : "deny", command.names);
}

namespace {

constexpr const char* kInspectFormat =
    "{{.State.StartedAt}}\t{{range .Mounts}}{{if eq .Destination \"/workspace\"}}{{.Source}}{{end}}{{end}}"
    "\t{{json .Args}}";

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string age_text(std::int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}


std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

std::string dns_type_text(int type) {
  switch (type) {
    case 1: return "A";
    case 28: return "AAAA";
    case 5: return "CNAME";
    case 65: return "HTTPS";
    case 64: return "SVCB";
    case 15: return "MX";
    case 16: return "TXT";
    case 33: return "SRV";
    default: return "TYPE" + std::to_string(type);
  }
}

std::vector<RunningCage> list_cage_names(ProcessRunner& runner) {
  RunOptions capture;
  capture.output = RunOptions::Output::capture;
  capture.timeout = std::chrono::seconds(30);
  const RunResult ps = runner.run({"docker", "ps", "--filter", std::string("label=") + kSessionLabel, "--format",
                                   std::string("{{.Names}}\t{{.Label \"") + kSessionLabel + "\"}}"},
                                  capture);
  if (ps.status != 0) throw DockerError("docker ps failed: " + ps.output);
  return parse_running_cages(ps.output);
}

void inspect_cage(ProcessRunner& runner, RunningCage& cage) {
  RunOptions capture;
  capture.output = RunOptions::Output::capture;
  capture.timeout = std::chrono::seconds(30);
  const RunResult inspect = runner.run({"docker", "inspect", "--format", kInspectFormat, cage.container}, capture);
  if (inspect.status == 0) apply_inspect(cage, inspect.output);
}

std::vector<RunningCage> list_cages(ProcessRunner& runner) {
  std::vector<RunningCage> cages = list_cage_names(runner);
  for (RunningCage& c : cages) inspect_cage(runner, c);
  return cages;
}

namespace {

std::filesystem::path log_dir_of(const HostContext& host, const std::string& session) {
  return host.cagent_home / "logs" / ("session-" + session);
}

std::optional<std::string> read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A session's record; nullopt when it has none (yet). Throws UsageError
// when it is there but unreadable.
std::optional<dnsguard::Decisions> record_of(const HostContext& host, const std::string& session) {
  try {
    return read_decision_record(log_dir_of(host, session));
  } catch (const std::exception& e) {
    throw UsageError("session " + session + ": unreadable decision record (" + printable(e.what()) + ")");
  }
}

// Whether a running session is in learn mode: its policy, in the session
// directory this user's cagent wrote (the agent never sees it). A session
// of another CAGENT_HOME, or one whose policy cannot be read, is not marked.
bool in_learn_mode(const HostContext& host, const std::string& session) {
  // The id comes from a container label, which anyone using the engine
  // can set: only cagent's own form (hex) names a path.
  if (session.empty() || session.size() > 64 ||
      !std::all_of(session.begin(), session.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); }))
    return false;
  try {
    return dnsguard::read_policy((host.cagent_home / "sessions" / session / "policy.toml").string()).learn;
  } catch (const std::exception&) {
    return false;
  }
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The line saying a session's record is incomplete (blocked_summary.hpp),
// if it is; `stopped`: the session's cage is known to be gone.
std::optional<std::string> incomplete_of(const HostContext& host, const std::string& session,
                                         const dnsguard::Decisions& record, bool stopped) {
  const std::filesystem::path dir = log_dir_of(host, session);
  return incomplete_line(record, RecordCheck{dir, unix_now(), stopped, free_bytes(dir)});
}

}  // namespace

void apply_inspect(RunningCage& cage, const std::string& line) {
  std::string l = line;
  while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
  const std::size_t t1 = l.find('\t');
  const std::size_t t2 = t1 == std::string::npos ? std::string::npos : l.find('\t', t1 + 1);
  if (t2 == std::string::npos) return;
  std::tm tm{};
  if (::strptime(l.substr(0, t1).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr) cage.started = ::timegm(&tm);
  cage.workspace = l.substr(t1 + 1, t2 - t1 - 1);
  try {
    const YAML::Node args = YAML::Load(l.substr(t2 + 1));
    bool after = false;
    for (const YAML::Node& a : args) {
      const std::string v = a.as<std::string>();
      if (after) cage.command.push_back(v);
      else if (v == "--") after = true;
    }
  } catch (const std::exception&) {
    // An unexpected shape: the command column stays empty.
  }
}

std::string render_ps(const std::vector<RunningCage>& cages, const std::vector<Blocked>& blocked, std::int64_t now,
                      bool json) {
  std::ostringstream out;
  if (!json && !cages.empty()) out << "SESSION       AGE   BLOCKED  REFUSED  WORKSPACE  COMMAND\n";
  for (std::size_t i = 0; i < cages.size(); ++i) {
    const RunningCage& c = cages[i];
    const Blocked b = i < blocked.size() ? blocked[i] : Blocked{};
    const std::int64_t age = c.started > 0 ? now - c.started : -1;
    if (json) {
      out << "{\"session\":" << json_string(c.session) << ",\"container\":" << json_string(c.container)
          << ",\"workspace\":" << json_string(c.workspace.string()) << ",\"command\":[";
      for (std::size_t k = 0; k < c.command.size(); ++k) out << (k ? "," : "") << json_string(c.command[k]);
      out << "],\"started\":" << c.started << ",\"age_seconds\":" << age << ",\"denied\":" << b.denied
          << ",\"gate_refused\":" << b.refused << ",\"firewall_refused\":" << b.firewall
          << ",\"learn\":" << (c.learn ? "true" : "false") << "}\n";
    } else {
      std::string cmd;
      for (const auto& w : c.command) cmd += (cmd.empty() ? "" : " ") + w;
      if (cmd.empty()) cmd = "(login shell)";
      char line[64];
      std::snprintf(line, sizeof line, "%-13s %-5s %7llu  %7llu  ", c.session.c_str(), age_text(age).c_str(),
                    static_cast<unsigned long long>(b.denied), static_cast<unsigned long long>(b.refused + b.firewall));
      // A learn session is marked where the eye lands first.
      out << line << (c.learn ? "LEARN  " : "") << printable(c.workspace.string()) << "  " << printable(cmd) << "\n";
    }
  }
  return out.str();
}

std::string render_log(const std::string& session, const dnsguard::Decisions& record, bool json) {
  std::ostringstream out;
  const std::string who = "{\"session\":" + json_string(session) + ",\"event\":";
  for (const dnsguard::DeniedLookup& e : record.denied) {
    if (json) {
      out << who << "\"denied\",\"name\":" << json_string(e.name) << ",\"type\":" << e.type << ",\"count\":" << e.count
          << ",\"first\":" << e.first << ",\"last\":" << e.last << "}\n";
    } else {
      out << "denied   " << printable(e.name) << " " << dns_type_text(e.type) << " \xC3\x97" << e.count << "  "
          << utc_iso8601(e.first) << " .. " << utc_iso8601(e.last) << "\n";
    }
  }
  if (record.denied_unlisted > 0 && !json)
    out << "denied   (" << record.denied_unlisted << " more lookups of names past the record's bound)\n";
  // Learn mode: resolved only because of it (learn.hpp makes the proposal).
  for (const dnsguard::LearnedName& e : record.learned) {
    if (json) {
      out << who << "\"learned\",\"name\":" << json_string(e.name) << ",\"count\":" << e.count
          << ",\"first\":" << e.first << ",\"last\":" << e.last << "}\n";
    } else {
      out << "learned  " << printable(e.name) << " \xC3\x97" << e.count << "  " << utc_iso8601(e.first) << " .. "
          << utc_iso8601(e.last) << "\n";
    }
  }
  for (const dnsguard::GateRefusal& e : record.gate_refused) {
    if (json) {
      out << who << "\"gate_refused\",\"name\":" << json_string(e.name) << ",\"dst\":" << json_string(e.dst)
          << ",\"reason\":" << json_string(e.reason) << ",\"count\":" << e.count << ",\"first\":" << e.first
          << ",\"last\":" << e.last << "}\n";
    } else {
      out << "refused  " << printable(e.name.empty() ? e.dst : e.name) << " \xC3\x97" << e.count << "  ("
          << printable(e.reason) << ")  " << utc_iso8601(e.first) << " .. " << utc_iso8601(e.last) << "\n";
    }
  }
  for (const dnsguard::FirewallRefusal& e : record.firewall_refused) {
    if (json) {
      out << who << "\"firewall_refused\",\"dst\":" << json_string(e.dst) << ",\"proto\":" << json_string(e.proto)
          << ",\"count\":" << e.count << ",\"first\":" << e.first << ",\"last\":" << e.last << "}\n";
    } else {
      out << "refused  " << printable(e.dst) << "/" << printable(e.proto) << " \xC3\x97" << e.count
          << "  (firewall: no allowed name resolved to it)  " << utc_iso8601(e.first) << " .. " << utc_iso8601(e.last)
          << "\n";
    }
  }
  if (record.firewall_refused_unlisted > 0 && !json)
    out << "refused  (" << record.firewall_refused_unlisted
        << " more packets: other protocols, or past the firewall's itemized bound)\n";
  for (const dnsguard::AllowChange& c : record.changes) {
    const bool allow = c.op == dnsguard::ChangeOp::allow;
    if (json) {
      out << who << (allow ? "\"allow\"" : "\"deny\"") << ",\"name\":" << json_string(c.name) << ",\"time\":" << c.time
          << "}\n";
    } else {
      out << (allow ? "allowed  " : "taken back ") << printable(c.name) << "  (at run time, " << utc_iso8601(c.time)
          << ")\n";
    }
  }
  return out.str();
}

std::filesystem::path save_domains(LiveCommand::Save where, const std::vector<std::string>& names,
                                   const HostContext& host) {
  namespace fs = std::filesystem;
  const bool global = where == LiveCommand::Save::global;
  const fs::path file = global ? host.cagent_home / "config.yaml" : host.workspace / ".cagent.yaml";
  const ApprovalStore store(host.cagent_home);
  std::string old_text;
  if (global) {
    // Trusted (threat model): read as it is, through no symlink games of a
    // cage (no cage sees ~/.cagent).
    old_text = read_text(file).value_or("");
  } else {
    // Saving counts as the user's approval of the result, so it must start
    // from content the user approved: else it would launder a file the
    // agent or a cloned repository wrote.
    if (!host.workspace_identity) {
      throw UsageError("the filesystem of " + printable(host.workspace.string()) +
                       " gives the directory no identity, so cagent cannot remember approvals there; use "
                       "--save=global");
    }
    const ConfigFileState state = inspect_config_file(file);
    if (state.symlink) throw UsageError(printable(file.string()) + " is a symlink; not writing through it");
    if (state.content) {
      const auto approvals = store.load(host.workspace.string(), *host.workspace_identity);
      const bool approved = approvals && std::find(approvals->contents.begin(), approvals->contents.end(),
                                                   state.hash) != approvals->contents.end();
      if (!approved) {
        throw UsageError(printable(file.string()) +
                         " is not approved in this directory (a session or the repository may have written "
                         "it); read it, run cagent --accept-workspace-config, then save again");
      }
    }
    old_text = state.content.value_or("");
  }
  std::string new_text;
  try {
    new_text = add_domains(old_text, names);
  } catch (const YamlEditError& e) {
    throw UsageError("not saving to " + file.string() + ": " + e.what());
  }
  if (new_text == old_text && fs::exists(file)) return {};
  // Never half a file, and never through a name planted meanwhile: the
  // rename replaces a symlink put there since the check above, it does not
  // follow it.
  try {
    dnsguard::write_file_atomically(file, new_text);  // 0644, synced: the user's own file
  } catch (const std::exception& e) {
    throw UsageError("cannot save: " + printable(e.what()));
  }
  // The user's own change: the next session loads it without asking.
  if (!global) store.approve(host.workspace.string(), *host.workspace_identity, sha256_hex(new_text));
  return file;
}

namespace {

// ---- cagent ps ------------------------------------------------------------------

int run_ps(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  // Records of sessions whose cagent was killed (session_record.hpp).
  remove_stale_sessions(host.cagent_home / "sessions");
  std::vector<RunningCage> cages = list_cages(runner);
  std::vector<Blocked> blocked;
  for (RunningCage& c : cages) {
    c.learn = in_learn_mode(host, c.session);
    Blocked b;
    try {
      if (const auto record = record_of(host, c.session)) {
        b = Blocked{record->denied_total, record->gate_refused_total, record->firewall_refused_total};
        if (const auto line = incomplete_of(host, c.session, *record, false))
          io.err << "cagent: session " << c.session << ": " << printable(*line) << "\n";
      }
    } catch (const UsageError& e) {
      io.err << "cagent: " << e.what() << "\n";  // the listing goes on, with no counts for it
    }
    blocked.push_back(b);
  }
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  io.out << render_ps(cages, blocked, now, command.json);
  if (cages.empty() && !command.json) io.err << "cagent: no running cages\n";
  return 0;
}

// ---- cagent log -----------------------------------------------------------------

// The session `cagent log` shows without one named: the running cage of
// this workspace, else the session whose record changed last.
std::string default_log_session(const HostContext& host, ProcessRunner& runner) {
  std::string session;
  for (const RunningCage& c : list_cages(runner))
    if (c.workspace == host.workspace) session = c.session;
  if (!session.empty()) return session;
  std::filesystem::file_time_type newest{};
  std::error_code ec;
  for (std::filesystem::directory_iterator it(host.cagent_home / "logs", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind("session-", 0) != 0) continue;
    std::error_code time_ec;
    const auto t = std::filesystem::last_write_time(dnsguard::decisions_path(it->path()), time_ec);
    if (!time_ec && (session.empty() || t > newest)) {
      newest = t;
      session = n.substr(8);
    }
  }
  if (session.empty()) throw UsageError("no session with a decision record yet");
  return session;
}

// -f: every interval, the lines that changed (a count going up prints that
// entry again), until the session's cage is gone; then one last read,
// since dnsguard writes its final counts as it stops.
void follow_log(const LiveCommand& command, const HostContext& host, ProcessRunner& runner,
                const std::string& session, std::vector<std::string> seen, std::optional<std::string> said,
                SessionIo io) {
  for (bool running = true; running;) {
    ::poll(nullptr, 0, static_cast<int>(command.follow_interval.count()));
    running = false;
    for (const RunningCage& c : list_cages(runner)) running = running || c.session == session;
    const auto record = record_of(host, session);
    if (!record) continue;
    for (std::string& line : split_lines(render_log(session, *record, command.json))) {
      if (std::find(seen.begin(), seen.end(), line) != seen.end()) continue;
      io.out << line << "\n";
      seen.push_back(std::move(line));
    }
    io.out << std::flush;
    // Said when it first shows and when it changes (the cage ending makes
    // "not since" into "not as it stopped").
    const auto incomplete = incomplete_of(host, session, *record, !running);
    if (incomplete && incomplete != said) io.err << "cagent: " << printable(*incomplete) << "\n" << std::flush;
    said = incomplete;
  }
}

int run_log(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  const std::string session = command.session ? *command.session : default_log_session(host, runner);
  const auto record = record_of(host, session);
  if (!record) {
    throw UsageError("unknown session " + session + " (no decision record in " +
                     log_dir_of(host, session).string() + ")");
  }
  const std::string shown = render_log(session, *record, command.json);
  io.out << shown << std::flush;
  // On stderr, so the listing (and its JSON) stays what it was.
  const auto incomplete = incomplete_of(host, session, *record, false);
  if (incomplete) io.err << "cagent: " << printable(*incomplete) << "\n" << std::flush;
  if (command.follow) follow_log(command, host, runner, session, split_lines(shown), incomplete, io);
  return 0;
}

// ---- cagent allow / deny ----------------------------------------------------------

int run_policy_change(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  // `allow --save` between sessions is the common case (a name the last
  // session missed, saved for the next): with no cage running for this
  // workspace it saves and says so. A session named with --session must
  // exist, and without --save there is nothing to do: both still refuse,
  // before anything is written.
  if (command.from_learned) {
    // The proposal from ~/.cagent (never the workspace's); the names given
    // too, each once.
    LiveCommand with = command;
    with.from_learned = false;
    for (std::string& n : load_proposal(proposal_path(host.cagent_home, host.workspace)))
      if (std::find(with.names.begin(), with.names.end(), n) == with.names.end()) with.names.push_back(std::move(n));
    io.err << "cagent: from the last learn session:";
    for (const std::string& n : with.names) io.err << " " << n;
    io.err << "\n";
    return run_policy_change(with, host, runner, io);
  }
  const bool saving = command.save != LiveCommand::Save::none;
  std::vector<RunningCage> targets;
  const std::vector<RunningCage> cages = list_cages(runner);
  if (saving && !command.session) {
    std::copy_if(cages.begin(), cages.end(), std::back_inserter(targets),
                 [&](const RunningCage& c) { return c.workspace == host.workspace; });
  } else {
    targets = select_cages(cages, host.workspace, command.session);
  }
  if (saving) {
    const auto file = save_domains(command.save, command.names, host);
    io.err << "cagent: " << (file.empty() ? std::string("already in the config: nothing saved")
                                           : "saved to " + printable(file.string()))
           << "\n";
  }
  const char* lasts = command.kind != LiveCommand::Kind::allow ? ""
                      : command.save != LiveCommand::Save::none ? " (and saved for the next sessions)"
                                                                 : " (until the session ends)";
  if (targets.empty()) {
    io.err << "cagent: no running cage for this workspace; the next session starts with "
           << (command.names.size() == 1 ? "it" : "them") << "\n";
    return 0;
  }
  int status = 0;
  for (const RunningCage& c : targets) {
    const dnsguard::ControlReply reply = send_control(
        runner, c, command.kind == LiveCommand::Kind::allow ? dnsguard::ControlOp::allow : dnsguard::ControlOp::deny,
        command.names);
    io.err << "cagent: session " << c.session << ": " << printable(dnsguard::describe(reply)) << (reply.ok ? lasts : "")
           << "\n";
    if (!reply.ok) status = kExitUsage;
  }
  return status;
}

}  // namespace

dnsguard::ControlReply send_control(ProcessRunner& runner, const RunningCage& cage, dnsguard::ControlOp op,
                                    const std::vector<std::string>& names) {
  RunOptions capture;
  capture.output = RunOptions::Output::capture;
  capture.timeout = std::chrono::seconds(30);
  capture.merge_stderr = true;
  const RunResult r = runner.run(control_argv(cage, op_word(op), names), capture);
  std::string output = r.output;
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const std::size_t newline = output.rfind('\n');
  const std::string last = newline == std::string::npos ? output : output.substr(newline + 1);
  dnsguard::ControlReply refusal;
  refusal.op = op;
  if (!last.empty() && last.front() == '{') {
    try {
      return dnsguard::parse_control_reply(last);
    } catch (const dnsguard::FormatError& e) {
      refusal.error = e.what();  // another version of dnsguard, or not its reply at all
      return refusal;
    }
  }
  refusal.error = output.empty() ? "dnsguard did not answer" : output;
  return refusal;
}

int run_live(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  switch (command.kind) {
    case LiveCommand::Kind::ps: return run_ps(command, host, runner, io);
    case LiveCommand::Kind::log: return run_log(command, host, runner, io);
    case LiveCommand::Kind::check: return run_check(command.check_cli, command.check_name, host, runner, io);
    case LiveCommand::Kind::kube: return run_kube(command.check_cli, command.kube, host, runner, io);
    case LiveCommand::Kind::watch: return run_watch(command, host, runner, io, WatchKeys{STDIN_FILENO, host.stdin_tty});
    case LiveCommand::Kind::allow:
    case LiveCommand::Kind::deny: return run_policy_change(command, host, runner, io);
  }
  return kExitUsage;
}

}  // namespace cagent::launcher::host
