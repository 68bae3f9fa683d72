#include "launcher/host/kube.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <ostream>

#include "launcher/host/policy.hpp"
#include "launcher/host/text.hpp"

namespace fs = std::filesystem;

namespace cagent::launcher::host {
namespace {

constexpr const char* kPolicyVolume = "policy";
constexpr const char* kWorkspaceVolume = "workspace";
constexpr const char* kEmptyVolume = "empty";
constexpr const char* kDefaultClaim = "cagent-workspace";
// A sidecar started by an older kubelet, or a slow node: the agent's own
// wait for dnsguard (the Pod is not ordered then) gets this long.
constexpr const char* kClassicReadyTimeoutMs = "60000";

std::string policy_path() { return std::string(kKubePolicyDir) + "/policy.toml"; }

// cage-init's command line for one role, with absolute paths (podman's kube
// play, like some runtimes, does not search PATH for `command`).
std::vector<std::string> cage_init(const char* mode) {
  return {kKubeCageInit, "--mode", mode, "--policy", policy_path()};
}

// The workspace's mounts in the agent's container: the claim at /workspace,
// each ignored path shadowed read-only, each read-only (or pinned) path a
// subPath mount of the claim — the Docker form's mount plan, in order
// (parents first, which is also the order the kubelet mounts in).
std::vector<KubeMount> workspace_mounts(const KubeInput& in, std::vector<std::string>& warnings, bool& uses_empty_dir) {
  std::vector<KubeMount> out;
  const fs::path empty_file = in.placeholder_dir / kEmptyFileName;
  const fs::path empty_dir = in.placeholder_dir / kEmptyDirName;
  for (const Mount& m : in.mounts.mounts) {
    if (m.source == empty_file) {
      out.push_back({kPolicyVolume, m.target, kEmptyFileName, true});
      continue;
    }
    if (m.source == empty_dir) {
      out.push_back({kEmptyVolume, m.target, "", true});
      uses_empty_dir = true;
      continue;
    }
    const fs::path relative = m.source.lexically_relative(in.workspace);
    if (relative.empty() || *relative.begin() == "..") {
      warnings.push_back("the Pod has no volume for " + printable(m.source.string()) + " (mounted at " +
                         printable(m.target) + " in the Docker form); left out");
      continue;
    }
    const std::string sub = relative == "." ? std::string() : relative.generic_string();
    out.push_back({kWorkspaceVolume, m.target, sub, m.readonly});
  }
  return out;
}

bool yaml_plain_ok(const std::string& s) {
  // Plain only when YAML 1.1 and 1.2 both read it back as this string:
  // never empty, nothing that looks like a number, a bool or null, no
  // characters with a meaning in YAML. Everything else is double-quoted
  // (so "1024" stays a string for the API server).
  if (s.empty()) return false;
  static const char* const kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* w : kWords) {
    if (lower == w) return false;
  }
  if (!std::isalpha(static_cast<unsigned char>(s.front())) && s.front() != '/' && s.front() != '_') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == '=';
  });
}

void scalar(YAML::Emitter& out, const std::string& s) {
  if (yaml_plain_ok(s)) out << s;
  else out << YAML::DoubleQuoted << s;
}

void key_value(YAML::Emitter& out, const char* key, const std::string& value) {
  out << YAML::Key << key << YAML::Value;
  scalar(out, value);
}

void string_list(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const std::string& v : values) scalar(out, v);
  out << YAML::EndSeq;
}

void seccomp_runtime_default(YAML::Emitter& out) {
  out << YAML::Key << "seccompProfile" << YAML::Value << YAML::BeginMap;
  key_value(out, "type", "RuntimeDefault");
  out << YAML::EndMap;
}

void emit_security(YAML::Emitter& out, const KubeSecurity& s) {
  out << YAML::Key << "securityContext" << YAML::Value << YAML::BeginMap;
  if (s.run_as_user) out << YAML::Key << "runAsUser" << YAML::Value << *s.run_as_user;
  if (s.run_as_group) out << YAML::Key << "runAsGroup" << YAML::Value << *s.run_as_group;
  out << YAML::Key << "runAsNonRoot" << YAML::Value << s.run_as_non_root;
  out << YAML::Key << "allowPrivilegeEscalation" << YAML::Value << false;
  out << YAML::Key << "capabilities" << YAML::Value << YAML::BeginMap;
  string_list(out, "drop", {"ALL"});
  if (!s.add.empty()) string_list(out, "add", s.add);
  out << YAML::EndMap;
  seccomp_runtime_default(out);
  out << YAML::EndMap;
}

void emit_container(YAML::Emitter& out, const KubeContainer& c, const std::string& image) {
  out << YAML::BeginMap;
  key_value(out, "name", c.name);
  key_value(out, "image", image);
  // The image is built or loaded next to the cluster, never pulled by tag.
  key_value(out, "imagePullPolicy", "IfNotPresent");
  if (c.restart_policy) key_value(out, "restartPolicy", *c.restart_policy);
  string_list(out, "command", c.command);
  if (c.interactive) {
    out << YAML::Key << "stdin" << YAML::Value << true;
    out << YAML::Key << "tty" << YAML::Value << true;
  }
  if (!c.startup_probe.empty()) {
    out << YAML::Key << "startupProbe" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "exec" << YAML::Value << YAML::BeginMap;
    string_list(out, "command", c.startup_probe);
    out << YAML::EndMap;
    out << YAML::Key << "periodSeconds" << YAML::Value << 1;
    out << YAML::Key << "timeoutSeconds" << YAML::Value << 3;
    out << YAML::Key << "failureThreshold" << YAML::Value << 60;
    out << YAML::EndMap;
  }
  emit_security(out, c.security);
  if (!c.mounts.empty()) {
    out << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq;
    for (const KubeMount& m : c.mounts) {
      out << YAML::BeginMap;
      key_value(out, "name", m.volume);
      key_value(out, "mountPath", m.mount_path);
      if (!m.sub_path.empty()) key_value(out, "subPath", m.sub_path);
      if (m.read_only) out << YAML::Key << "readOnly" << YAML::Value << true;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
}

void emit_labels(YAML::Emitter& out, const KubeManifest& m) {
  out << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
  key_value(out, "app.kubernetes.io/name", "cagent");
  key_value(out, "app.kubernetes.io/instance", m.name);
  out << YAML::EndMap;
}

void emit_pod_spec(YAML::Emitter& out, const KubeManifest& m) {
  out << YAML::BeginMap;
  key_value(out, "restartPolicy", "Never");
  // The agent gets no credentials for the cluster's API, and no
  // environment naming the namespace's services.
  out << YAML::Key << "automountServiceAccountToken" << YAML::Value << false;
  out << YAML::Key << "enableServiceLinks" << YAML::Value << false;
  // dnsguard is the only resolver (its upstream is in the policy).
  key_value(out, "dnsPolicy", "None");
  out << YAML::Key << "dnsConfig" << YAML::Value << YAML::BeginMap;
  string_list(out, "nameservers", {"127.0.0.1"});
  out << YAML::EndMap;
  out << YAML::Key << "securityContext" << YAML::Value << YAML::BeginMap;
  // The workspace claim's files are group-writable for the agent's gid.
  out << YAML::Key << "fsGroup" << YAML::Value << m.fs_group;
  // Not a recursive chown of a whole checkout at every start: only when the
  // claim's root is not the group's yet.
  key_value(out, "fsGroupChangePolicy", "OnRootMismatch");
  seccomp_runtime_default(out);
  // No uid but root's may bind a port below 1024 (runtimes set 0): the
  // agent cannot pose as a resolver on a low port. A "safe" sysctl, allowed
  // by default; cage-init's guard refuses to go on without it.
  out << YAML::Key << "sysctls" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  key_value(out, "name", "net.ipv4.ip_unprivileged_port_start");
  key_value(out, "value", "1024");
  out << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;
  out << YAML::Key << "initContainers" << YAML::Value << YAML::BeginSeq;
  for (const KubeContainer& c : m.init_containers) emit_container(out, c, m.image);
  out << YAML::EndSeq;
  out << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  for (const KubeContainer& c : m.containers) emit_container(out, c, m.image);
  out << YAML::EndSeq;
  out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  for (const KubeVolume& v : m.volumes) {
    out << YAML::BeginMap;
    key_value(out, "name", v.name);
    switch (v.kind) {
      case KubeVolume::Kind::config_map:
        out << YAML::Key << "configMap" << YAML::Value << YAML::BeginMap;
        key_value(out, "name", v.source);
        out << YAML::EndMap;
        break;
      case KubeVolume::Kind::claim:
        out << YAML::Key << "persistentVolumeClaim" << YAML::Value << YAML::BeginMap;
        key_value(out, "claimName", v.source);
        out << YAML::EndMap;
        break;
      case KubeVolume::Kind::empty_dir:
        out << YAML::Key << "emptyDir" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        break;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
}

}  // namespace

std::string kube_name(const fs::path& workspace) {
  std::string base = workspace.filename().string();
  std::string name = "cagent-";
  for (const char c : base) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (ok) name += lower;
    else if (name.back() != '-') name += '-';
  }
  constexpr std::size_t kMax = 52;
  if (name.size() > kMax) name.resize(kMax);
  while (name.back() == '-') name.pop_back();
  return name;
}

bool valid_kube_name(const std::string& name) {
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return !name.empty() && name.size() <= 253 && alnum(name.front()) && alnum(name.back()) &&
         std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

KubeManifest plan_kube(const KubeInput& in) {
  KubeManifest m;
  Config config = in.config;
  if (config.dns_resolvers.empty()) {
    throw UsageError(
        "cagent kube: dns_resolvers is empty; name the cluster's DNS service as dnsguard's upstream "
        "(e.g. dns_resolvers: [10.96.0.10] in the config given with -c; kubectl -n kube-system get service kube-dns)");
  }
  if (!config.extra_args.empty()) {
    m.warnings.push_back("extra_args are docker run arguments; the Pod leaves them out (and the ports they publish)");
    config.extra_args.clear();
    config.inbound.clear();
  }
  if (!config.secrets.empty()) {
    // The relay that holds their values runs beside a host cagent; a Pod
    // has neither, so the secrets' hosts stay ordinary allowed names.
    m.warnings.push_back("secrets are not carried into the Pod (no secret relay there); their hosts are not relayed");
    config.secrets.clear();
  }
  if (config.learn) {
    // Learn mode's proposal is made by the host cagent at the session's
    // end; a Pod has none, so it would only open every name for nothing.
    m.warnings.push_back("learn mode is left out of the Pod (its proposal needs cagent on the host)");
    config.learn = false;
  }
  if (config.ask) {
    // The approver, cagent watch, reaches a cage through docker exec; no
    // one could attach to a Pod's dnsguard, so nothing would ever be held.
    m.warnings.push_back("ask mode is left out of the Pod (cagent watch reaches only docker cages)");
    config.ask = false;
  }
  if (!config.ca_certificates.empty()) {
    m.warnings.push_back("ca_certificates are not carried into the Pod; build them into the image it runs");
  }
  m.name = kube_name(in.workspace);
  m.config_map = m.name + "-policy";
  m.image = in.options.image.value_or(in.default_image);
  m.job = in.options.job;
  m.policy_toml = render_policy_toml(config);

  const KubeMount policy_mount{kPolicyVolume, kKubePolicyDir, "", true};
  // Root in the guard's containers, with only what each role needs.
  KubeContainer guard{"guard", cage_init("guard"), {0, 0, false, {"NET_ADMIN"}}, {policy_mount}, {}, {}, false};
  // dnsguard's own (NET_ADMIN: the allow sets; NET_BIND_SERVICE: port 53),
  // and what cage-init needs to start it under its uid with only those
  // (SETUID, SETGID, SETPCAP), give it its log directory (CHOWN, FOWNER)
  // and stop it (KILL).
  KubeContainer dnsguard{"dnsguard",
                         cage_init("dnsguard"),
                         {0, 0, false, {"CHOWN", "FOWNER", "KILL", "NET_ADMIN", "NET_BIND_SERVICE", "SETGID", "SETPCAP", "SETUID"}},
                         {policy_mount},
                         {},
                         {},
                         false};
  std::vector<std::string> probe = cage_init("probe");
  probe.insert(probe.end(), {"--ready-timeout", "2000"});

  KubeContainer agent{"agent", cage_init("agent"), {kImageAgentUid, kImageAgentGid, true, {}}, {policy_mount}, {}, {}, false};
  bool uses_empty_dir = false;
  for (KubeMount& mount : workspace_mounts(in, m.warnings, uses_empty_dir)) agent.mounts.push_back(std::move(mount));
  if (in.options.classic_sidecar) {
    agent.command.insert(agent.command.end(), {"--ready-timeout", kClassicReadyTimeoutMs});
  }
  if (in.command.empty()) {
    agent.interactive = true;  // the login shell: kubectl attach -it
  } else {
    agent.command.push_back("--");
    agent.command.insert(agent.command.end(), in.command.begin(), in.command.end());
  }

  m.init_containers.push_back(std::move(guard));
  if (in.options.classic_sidecar) {
    // Older clusters: an init container that never exits would hold the
    // Pod in Init forever, so dnsguard runs beside the agent, whose
    // cage-init waits for its answer before running the command.
    m.containers.push_back(std::move(dnsguard));
  } else {
    dnsguard.restart_policy = "Always";
    dnsguard.startup_probe = std::move(probe);
    m.init_containers.push_back(std::move(dnsguard));
  }
  m.containers.push_back(std::move(agent));

  m.volumes.push_back({KubeVolume::Kind::config_map, kPolicyVolume, m.config_map});
  m.volumes.push_back({KubeVolume::Kind::claim, kWorkspaceVolume, in.options.claim.value_or(kDefaultClaim)});
  if (uses_empty_dir) m.volumes.push_back({KubeVolume::Kind::empty_dir, kEmptyVolume, ""});
  return m;
}

std::string render_kube_yaml(const KubeManifest& m) {
  YAML::Emitter out;
  out << YAML::BeginDoc << YAML::BeginMap;
  key_value(out, "apiVersion", "v1");
  key_value(out, "kind", "ConfigMap");
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  key_value(out, "name", m.config_map);
  emit_labels(out, m);
  out << YAML::EndMap;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  // The same bytes the Docker form mounts at /etc/cagent/policy.toml.
  out << YAML::Key << "policy.toml" << YAML::Value << YAML::Literal << m.policy_toml;
  out << YAML::Key << kEmptyFileName << YAML::Value << YAML::DoubleQuoted << "";
  out << YAML::EndMap;
  out << YAML::EndMap;

  out << YAML::BeginDoc << YAML::BeginMap;
  key_value(out, "apiVersion", m.job ? "batch/v1" : "v1");
  key_value(out, "kind", m.job ? "Job" : "Pod");
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  key_value(out, "name", m.name);
  emit_labels(out, m);
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value;
  if (m.job) {
    out << YAML::BeginMap;
    // One run: a failed agent is a result to read, not to retry.
    out << YAML::Key << "backoffLimit" << YAML::Value << 0;
    out << YAML::Key << "template" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
    emit_labels(out, m);
    out << YAML::EndMap;
    out << YAML::Key << "spec" << YAML::Value;
    emit_pod_spec(out, m);
    out << YAML::EndMap;
    out << YAML::EndMap;
  } else {
    emit_pod_spec(out, m);
  }
  out << YAML::EndMap;
  std::string text = out.c_str();
  text += "\n";
  return text;
}

int run_kube(const CliOptions& cli, const KubeOptions& options, const HostContext& host, ProcessRunner& runner,
             SessionIo io) {
  // Planned like a dry run: nothing is written or remembered, and no
  // engine is needed (the image runs in the cluster).
  CliOptions planning = cli;
  planning.dry_run = true;
  const MergedConfig merged = resolve_config(planning, host, io);
  const PlannedSession planned = plan_session(planning, host, merged, runner, io);
  const PreparedSession& session = planned.session;
  const KubeManifest manifest = plan_kube(KubeInput{session.config, session.plan, host.workspace,
                                                    session.session_dir, cli.command, options, host.image});
  for (const std::string& w : manifest.warnings) io.err << "cagent kube: " << w << "\n";
  io.out << render_kube_yaml(manifest);
  return 0;
}

}  // namespace cagent::launcher::host
