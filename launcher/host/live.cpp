#include "launcher/host/live.hpp"

#include <algorithm>
#include <ostream>
#include <sstream>

#include "dnsguard/allow_list.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"

namespace cagent::launcher::host {
namespace {

// Where dnsguard's control socket is inside every cage: its log directory
// (kContainerLogDir) + control/dnsguard.sock (dnsguard::control_socket_for).
constexpr const char* kControlSocket = "/var/log/cagent/control/dnsguard.sock";
constexpr const char* kDnsguard = "/usr/local/bin/dnsguard";

}  // namespace

std::optional<LiveCommand> parse_live_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "allow" && args[0] != "deny")) return std::nullopt;
  LiveCommand c;
  c.kind = args[0] == "allow" ? LiveCommand::Kind::allow : LiveCommand::Kind::deny;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--session" || a.rfind("--session=", 0) == 0) {
      if (a == "--session") {
        if (i + 1 >= args.size()) throw UsageError("option --session needs a value");
        c.session = args[++i];
      } else {
        c.session = a.substr(10);
      }
      if (c.session->empty()) throw UsageError("option --session needs a value");
      continue;
    }
    if (a.rfind("--save", 0) == 0) throw UsageError("--save is not supported yet: add the name to domains in .cagent.yaml");
    if (a.rfind("-", 0) == 0) throw UsageError("unknown option '" + a + "' for cagent " + args[0]);
    try {
      std::string n = dnsguard::normalize_pattern(a);
      if (std::find(c.names.begin(), c.names.end(), n) == c.names.end()) c.names.push_back(std::move(n));
    } catch (const dnsguard::PatternError& e) {
      throw UsageError("invalid pattern '" + a + "': " + e.what());
    }
  }
  if (c.names.empty()) throw UsageError("usage: cagent " + args[0] + " NAME… [--session ID]");
  return c;
}

std::vector<RunningCage> parse_running_cages(const std::string& out) {
  std::vector<RunningCage> cages;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 >= line.size()) continue;
    cages.push_back(RunningCage{line.substr(0, tab), line.substr(tab + 1), {}});
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

std::vector<std::string> control_argv(const RunningCage& cage, const LiveCommand& command) {
  // -u 0: the control socket serves root only; the agent's uid cannot.
  std::vector<std::string> argv{"docker", "exec", "-u", "0", cage.container, kDnsguard, "--control",
                                kControlSocket, command.kind == LiveCommand::Kind::allow ? "allow" : "deny"};
  argv.insert(argv.end(), command.names.begin(), command.names.end());
  return argv;
}

int run_live(const LiveCommand& command, const HostContext& host, ProcessRunner& runner, SessionIo io) {
  RunOptions capture;
  capture.output = RunOptions::Output::capture;
  capture.timeout = std::chrono::seconds(30);
  const RunResult ps = runner.run({"docker", "ps", "--filter", std::string("label=") + kSessionLabel, "--format",
                                   std::string("{{.Names}}\t{{.Label \"") + kSessionLabel + "\"}}"},
                                  capture);
  if (ps.status != 0) throw DockerError("docker ps failed: " + ps.output);
  std::vector<RunningCage> cages = parse_running_cages(ps.output);
  for (RunningCage& c : cages) {
    const RunResult inspect = runner.run(
        {"docker", "inspect", "--format",
         "{{range .Mounts}}{{if eq .Destination \"/workspace\"}}{{.Source}}{{end}}{{end}}", c.container},
        capture);
    std::string src = inspect.output;
    while (!src.empty() && (src.back() == '\n' || src.back() == '\r')) src.pop_back();
    if (inspect.status == 0) c.workspace = src;
  }
  const std::vector<RunningCage> targets = select_cages(cages, host.workspace, command.session);
  int status = 0;
  for (const RunningCage& c : targets) {
    RunOptions o = capture;
    o.merge_stderr = true;
    const RunResult r = runner.run(control_argv(c, command), o);
    std::string reply = r.output;
    while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
    if (r.status == 0) {
      io.err << "cagent: session " << c.session << ": " << reply.substr(std::min<std::size_t>(reply.size(), 3))
             << (command.kind == LiveCommand::Kind::allow ? " (until the session ends)" : "") << "\n";
    } else {
      if (reply.rfind("error ", 0) == 0) reply = reply.substr(6);
      io.err << "cagent: session " << c.session << ": " << (reply.empty() ? "dnsguard did not answer" : reply)
             << "\n";
      status = kExitUsage;
    }
  }
  return status;
}

}  // namespace cagent::launcher::host
