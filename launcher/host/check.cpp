#include "launcher/host/check.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>

#include "dnsguard/allow_list.hpp"
#include "dnsguard/posix.hpp"
#include "launcher/host/blocked_summary.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/session_record.hpp"
#include "launcher/host/scan.hpp"
#include "launcher/host/text.hpp"

namespace fs = std::filesystem;

namespace cagent::launcher::host {

namespace {

// The checks, run by bash as the agent. Arguments: allowed denied other
// gate(1|0) unresolved-address other-resolver, then the placeholders
// (relative to /workspace). Each row as render_row() prints the host's;
// the exit status is the number of rows that are `fail` or `off`. Only
// tools of the image's workbench: getent, curl, dig, awk, grep.
constexpr const char* kScript = R"SH(set -u
allowed=$1 denied=$2 other=$3 gate=$4 unresolved=$5 resolver=$6 port=$7
shift 7
bad=0
# A listener on every address of the cage, for the whole run: the host
# tries to reach it from outside meanwhile (check.cpp, InboundProbe). It
# counts who came; the script's own connection from loopback at the end is
# the control that it was listening.
listener= inbound=
if command -v python3 >/dev/null 2>&1; then
  inbound=$(mktemp)
  python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
s.settimeout(0.2)
remote = local = 0
start = time.monotonic()
while time.monotonic() - start < 8:
    try:
        c, peer = s.accept()
    except socket.timeout:
        if local and time.monotonic() - start >= 4:
            break
        continue
    if peer[0].startswith("127."):
        local += 1
    else:
        remote += 1
    c.close()
print(remote, local)
' "$port" >"$inbound" 2>&1 &
  listener=$!
fi
row() {
  printf '  %-4s  %-46s %s\n' "$1" "$2" "$3"
  case $1 in fail|off) bad=$((bad + 1)) ;; esac
}
first_line() { printf '%s\n' "$1" | head -n 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

what="the agent holds no privilege"
held=
for f in CapInh CapPrm CapEff CapBnd CapAmb; do
  v=$(awk -v f="$f:" '$1 == f {print $2}' /proc/self/status)
  case $v in '' | *[!0]*) held="$held $f=${v:-?}" ;; esac
done
nnp=$(awk '$1 == "NoNewPrivs:" {print $2}' /proc/self/status)
if [ -z "$held" ] && [ "$nnp" = 1 ]; then
  row pass "$what" "no capability in any set; no_new_privs set"
else
  row fail "$what" "capabilities:${held:- none}; no_new_privs ${nnp:-unknown}"
fi

what="an allowed name resolves"
addr=$(getent ahosts "$allowed" 2>/dev/null | awk 'NR == 1 {print $1}')
if [ -n "$addr" ]; then row pass "$what" "$allowed: $addr"; else row fail "$what" "$allowed: no address"; fi

what="an allowed name connects"
scheme=
if ! command -v curl >/dev/null 2>&1; then
  row fail "$what" "curl is not in the image"
elif [ -n "$addr" ]; then
  why=
  for s in https http; do
    if out=$(curl -ksS -o /dev/null -m 10 -w 'HTTP %{http_code}' "$s://$allowed/" 2>&1); then scheme=$s; break; fi
    why="${why:+$why; }$s: $(first_line "$out")"
  done
  if [ -n "$scheme" ]; then row pass "$what" "$scheme://$allowed/ answered $out"; else row fail "$what" "$why"; fi
else
  row fail "$what" "no address to connect to"
fi

what="a name not allowed does not resolve"
if out=$(getent hosts "$denied" 2>&1); then row fail "$what" "$denied: $out"; else row pass "$what" "$denied: no answer"; fi

what="DNS sent to another resolver: dnsguard answers"
if command -v dig >/dev/null 2>&1; then
  out=$(dig +time=3 +tries=1 "@$resolver" "$denied" A 2>&1)
  if printf '%s\n' "$out" | grep -q 'blocked by cagent'; then
    row pass "$what" "$resolver: dnsguard's answer (its Extended DNS Error)"
  else
    row fail "$what" "$resolver: $(printf '%s\n' "$out" | grep -m1 -E 'status:|timed out|refused|no servers' || echo 'not dnsguard')"
  fi
else
  row skip "$what" "dig is not in the image"
fi

what="an address nobody resolved is refused at once"
# bash's own connect, for the kernel's reason: the firewall's TCP reset
# (refused) or its ICMP error (no route to host). "Network is unreachable"
# comes from a cage with no route, not from a firewall, and proves nothing.
t0=$(now_ms)
out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/80"' cagent-check "$unresolved" 2>&1)
rc=$?
ms=$(($(now_ms) - t0))
reason=$(printf '%s\n' "$out" | grep -o -m1 -E 'Connection refused|No route to host|Network is unreachable')
if [ "$rc" = 0 ]; then
  row fail "$what" "$unresolved:80 accepted the connection"
elif [ "$rc" = 124 ]; then
  row fail "$what" "$unresolved:80: no answer within 5 s"
elif [ "$ms" -lt 2000 ] && { [ "$reason" = "Connection refused" ] || [ "$reason" = "No route to host" ]; }; then
  row pass "$what" "$unresolved:80: ${reason} after $ms ms"
else
  row fail "$what" "$unresolved:80: $(first_line "$out") after $ms ms"
fi

what="another site on the allowed address is refused"
if [ "$gate" != 1 ]; then
  row off "$what" "the connection gate is off (connection_gate: false): any site on an allowed address is reachable"
elif [ -z "$scheme" ]; then
  row fail "$what" "not checked: $allowed did not connect"
else
  web=443
  [ "$scheme" = http ] && web=80
  a=$addr
  case $a in *:*) a="[$a]" ;; esac
  if out=$(curl -ksS -o /dev/null -m 10 -w 'HTTP %{http_code}' --resolve "$other:$web:$a" "$scheme://$other/" 2>&1); then
    row fail "$what" "$other on $addr port $web answered $out"
  else
    row pass "$what" "$other on $addr port $web: $(first_line "$out")"
  fi
fi

if [ $# -eq 0 ]; then
  row skip "ignored files are empty placeholders" "nothing here matches the ignore patterns"
fi
for p in "$@"; do
  f=/workspace/$p
  what="ignored: $p"
  if [ -L "$f" ] || [ ! -e "$f" ]; then
    row fail "$what" "not there as a placeholder"
  elif [ -d "$f" ]; then
    if [ -n "$(ls -A "$f" 2>/dev/null)" ]; then
      row fail "$what" "a directory with content"
    elif (: >"$f/.cagent-check") 2>/dev/null; then
      rm -f "$f/.cagent-check"
      row fail "$what" "empty, but writable"
    else
      row pass "$what" "an empty read-only directory"
    fi
  elif [ -s "$f" ]; then
    row fail "$what" "a file with content"
  elif (: >>"$f") 2>/dev/null; then
    row fail "$what" "empty, but writable"
  else
    row pass "$what" "an empty read-only file"
  fi
done
what="inbound: nothing from outside gets in"
if [ -n "$listener" ]; then
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  wait "$listener"
  remote= local=
  read -r remote local <"$inbound" || true
  case "${remote:-x} ${local:-x}" in
    *[!0-9\ ]* | *" 0") local=0 ;;  # no count, or the control did not arrive
  esac
  if [ "$local" = 0 ]; then
    row fail "$what" "not checked: the listener on :$port did not work ($(head -c 200 "$inbound" | tr '\n' ' '))"
  elif [ "$remote" = 0 ]; then
    row pass "$what" "no connection to :$port came from outside the cage (the host's attempts: below)"
  else
    row fail "$what" "$remote connections to :$port came from outside the cage"
  fi
  rm -f "$inbound"
else
  row skip "$what" "python3 is not in the image"
fi
exit $((bad > 100 ? 100 : bad))
)SH";

// The host's side of the inbound check: while the session runs, it finds
// the cage's address (docker inspect) and tries to connect to the script's
// listener from outside, a few times over a few seconds. Its own thread,
// since docker run holds the foreground; joined before the result is read.
class InboundProbe {
 public:
  InboundProbe(ProcessRunner& runner, std::string container) : runner_(runner), container_(std::move(container)) {
    // The stop signals stay with the thread that handles them
    // (run_foreground's signalfd): the probe's thread is made with them
    // blocked.
    sigset_t stop, old;
    sigemptyset(&stop);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaddset(&stop, s);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    thread_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~InboundProbe() { finish(); }
  InboundProbe(const InboundProbe&) = delete;
  InboundProbe& operator=(const InboundProbe&) = delete;

  // Stops looking (the session is over) and waits for the thread.
  const InboundResult& finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  void run() {
    using Clock = std::chrono::steady_clock;
    RunOptions capture;
    capture.output = RunOptions::Output::capture;
    capture.discard_stderr = true;
    capture.timeout = std::chrono::seconds(5);
    const auto give_up = Clock::now() + std::chrono::seconds(20);
    while (!stop_ && result_.address.empty() && Clock::now() < give_up) {
      const RunResult r = runner_.run({"docker", "inspect", "--format",
                                       "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container_},
                                      capture);
      std::istringstream words(r.output);
      if (r.status == 0) words >> result_.address;
      if (result_.address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (result_.address.empty()) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kInboundPort);
    if (::inet_pton(AF_INET, result_.address.c_str(), &to.sin_addr) != 1) {
      result_.last_error = "not an IPv4 address";
      return;
    }
    const auto until = Clock::now() + std::chrono::seconds(3);
    while (!stop_ && Clock::now() < until) {
      ++result_.attempts;
      const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd.valid()) {
        result_.last_error = std::strerror(errno);
        return;
      }
      int error = 0;
      if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        error = errno;
        if (error == EINPROGRESS) {
          pollfd p{fd.get(), POLLOUT, 0};
          if (::poll(&p, 1, 700) == 1) {
            socklen_t len = sizeof error;
            ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
          } else {
            error = ETIMEDOUT;
          }
        }
      }
      if (error == 0) {
        ++result_.connected;
      } else {
        result_.last_error = std::strerror(error);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }

  ProcessRunner& runner_;
  std::string container_;
  std::atomic<bool> stop_{false};
  InboundResult result_;
  std::thread thread_;
};

bool plain_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

CheckPlan plan_check(const Config& config, const MountPlan& plan, const std::optional<std::string>& name,
                     const std::string& nonce) {
  const dnsguard::AllowList allow(config.domains);
  CheckPlan p;
  if (name) {
    std::string n;
    try {
      n = dnsguard::normalize_pattern(*name);
    } catch (const dnsguard::PatternError& e) {
      throw UsageError("--name '" + printable(*name) + "': " + e.what());
    }
    if (n.find('*') != std::string::npos) throw UsageError("--name takes a name, not a pattern: " + n);
    if (!allow.allows(n)) throw UsageError("--name " + n + " is not allowed by this workspace's configuration");
    p.allowed = n;
  } else {
    const auto exact =
        std::find_if(config.domains.begin(), config.domains.end(), [](const std::string& d) { return d[0] != '*'; });
    if (exact == config.domains.end()) {
      throw UsageError("no exact name in the allowlist to check with; give one: cagent check --name NAME");
    }
    p.allowed = *exact;
  }
  // .invalid (RFC 6761) never exists anywhere; unique per run, so the
  // record's entry is this run's.
  p.denied = "cagent-check-" + nonce + ".invalid";
  p.other = "cagent-check-other-" + nonce + ".invalid";
  if (allow.allows(p.denied) || allow.allows(p.other)) {
    throw UsageError("the allowlist allows names under .invalid; cagent check needs one it denies");
  }
  p.gate = config.connection_gate;
  const std::string prefix = std::string(kContainerWorkspace) + "/";
  for (const Mount& m : plan.mounts) {
    const std::string source = m.source.filename().string();
    if (source != kEmptyFileName && source != kEmptyDirName) continue;
    if (m.target.rfind(prefix, 0) != 0) continue;
    std::string rel = m.target.substr(prefix.size());
    // Workspace names are the agent's: only plain ones reach the terminal.
    if (!plain_ascii(rel)) continue;
    p.placeholders.push_back(std::move(rel));
    if (p.placeholders.size() == kMaxPlaceholders) break;
  }
  return p;
}

std::vector<std::string> check_command(const CheckPlan& plan) {
  std::vector<std::string> argv{"bash",         "-c",         kScript,
                                "cagent-check", plan.allowed, plan.denied,
                                plan.other,     plan.gate ? "1" : "0", kUnresolvedAddress,
                                kOtherResolver, std::to_string(kInboundPort)};
  argv.insert(argv.end(), plan.placeholders.begin(), plan.placeholders.end());
  return argv;
}

CheckRow record_row(const CheckPlan& plan, const std::optional<dnsguard::Decisions>& record) {
  CheckRow row{"fail", "a name not allowed is never forwarded", ""};
  if (!record) {
    row.detail = "no decision record to tell";
    return row;
  }
  for (const dnsguard::DeniedLookup& d : record->denied) {
    if (d.name == plan.denied) {
      row.status = "pass";
      row.detail = "dnsguard answered it itself (decision record: denied, " + std::to_string(d.count) + " lookups)";
      return row;
    }
  }
  row.detail = plan.denied + " is not in the decision record's denied lookups";
  return row;
}

CheckRow inbound_row(const InboundResult& r) {
  CheckRow row{"skip", "inbound: the host cannot connect in", ""};
  if (r.address.empty()) {
    row.detail = "the cage's address was not found" + (r.last_error.empty() ? "" : ": " + r.last_error);
    return row;
  }
  const std::string where = r.address + ":" + std::to_string(kInboundPort);
  if (r.attempts == 0) {
    row.detail = "no attempt was made on " + where + (r.last_error.empty() ? "" : ": " + r.last_error);
    return row;
  }
  if (r.connected > 0) {
    row.status = "fail";
    row.detail = std::to_string(r.connected) + " of " + std::to_string(r.attempts) + " connections to " + where +
                 " were accepted";
    return row;
  }
  row.status = "pass";
  row.detail = std::to_string(r.attempts) + " tries to " + where + ": " + r.last_error;
  return row;
}

std::string render_row(const CheckRow& row) {
  // The script's printf format: '  %-4s  %-46s %s'.
  std::string status = row.status, what = row.what;
  if (status.size() < 4) status.resize(4, ' ');
  if (what.size() < 46) what.resize(46, ' ');
  return "  " + status + "  " + what + " " + row.detail + "\n";
}

int run_check(const CliOptions& options, const std::optional<std::string>& name, const HostContext& host,
              ProcessRunner& runner, SessionIo io) {
  // The effective configuration: what `cagent` with these options would use.
  CliOptions cli = options;
  cli.command = {"true"};  // replaced below, once the plan names what to check
  const MergedConfig merged = resolve_config(cli, host, io);
  PreparedSession session = plan_session(cli, host, merged, runner, io).session;
  const CheckPlan plan = plan_check(session.config, session.plan, name, session.id);
  session.run.command = check_command(plan);
  session.run.tty = false;
  remove_stale_sessions(host.cagent_home / "sessions");
  start_session(session, host, runner, io);
  io.out << "cagent check: " << printable(host.workspace.string())
         << "'s configuration, in a throwaway cage (session " << session.id << ")\n"
         << std::flush;
  InboundProbe inbound(runner, session.run.container_name);
  const SessionOutcome outcome = supervise_session(session, host, runner, io);
  const InboundResult& reached = inbound.finish();
  if (outcome.signalled || outcome.engine == EngineCheck::closed || outcome.status > 100) {
    // Stopped, the engine gone, or the cage never ran the checks: the
    // usual end-of-session line says which.
    const int status = summarize_session(outcome, session.log_dir, io);
    io.err << "cagent check: the checks did not run to the end\n";
    return status == 0 ? 1 : status;
  }
  int failed = outcome.status;
  for (const CheckRow& row : {record_row(plan, read_decision_record(session.log_dir)), inbound_row(reached)}) {
    io.out << render_row(row);
    if (row.status == "fail" || row.status == "off") ++failed;
  }
  if (failed == 0) {
    io.out << "cagent check: every check passed\n";
    return 0;
  }
  io.out << "cagent check: " << failed << (failed == 1 ? " check" : " checks") << " did not pass (fail or off above)\n";
  return 1;
}

}  // namespace cagent::launcher::host
