#include "launcher/host/docker_argv.hpp"

#include "launcher/host/sha256.hpp"
#include "launcher/host/text.hpp"

namespace cagent::launcher::host {
namespace {

// docker parses --mount values as one CSV record: quote every field and
// double embedded quotes so commas, quotes and newlines in paths survive.
std::string csv_field(const std::string& field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::vector<std::string> render_bind(const std::filesystem::path& source,
                                     const std::string& target, bool readonly) {
  const std::string src = source.string();
  if (src.find(':') == std::string::npos && target.find(':') == std::string::npos &&
      src.find(',') == std::string::npos && target.find(',') == std::string::npos) {
    return {"-v", src + ":" + target + (readonly ? ":ro" : "")};
  }
  std::string spec = "type=bind," + csv_field("source=" + src) + "," + csv_field("target=" + target);
  if (readonly) spec += ",readonly";
  return {"--mount", spec};
}

std::vector<std::string> render_run_argv(const RunSpec& spec) {
  std::vector<std::string> argv = {"docker", "run", "--rm",
                                   // --init: a real PID 1 reaps zombies and forwards signals
                                   "--init", "-i"};
  // -t only when both ends are terminals: a pipeline must stay binary-safe
  // (a TTY would translate line endings and merge stderr into stdout).
  if (spec.tty) argv.push_back("-t");
  const auto add = [&](std::initializer_list<std::string> items) {
    argv.insert(argv.end(), items.begin(), items.end());
  };
  const auto add_all = [&](const std::vector<std::string>& items) {
    argv.insert(argv.end(), items.begin(), items.end());
  };
  add({"--name", spec.container_name, "--label", std::string(kSessionLabel) + "=" + spec.session_id,
       "--hostname", "cagent"});
  // Everything dropped, then exactly what cage-init (root) needs to install
  // the firewall, start dnsguard on :53, chown/remap the agent user and drop
  // privileges; cage-init removes all of them before running the command.
  // Docker disables IPv6 on every interface of a container on a network
  // without IPv6, loopback included; dnsguard listens on [::1]:53 as well as
  // 127.0.0.1:53 (the policy contract), so give the cage its IPv6 loopback
  // back. Only lo: no IPv6 route out appears.
  add({"--sysctl", "net.ipv6.conf.lo.disable_ipv6=0"});
  // Docker lets every uid bind ports below 1024 in a container; the agent
  // could then bind an upstream resolver's endpoint (127.0.0.11:53) and pose
  // as it. Only dnsguard (CAP_NET_BIND_SERVICE) may; cage-init checks it.
  add({"--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"});
  if (spec.sysbox) {
    // Nested Docker: cage-init forwards the sandbox's packets
    // (through the forward chain) ...
    add({"--sysctl", "net.ipv4.ip_forward=1"});
    // ... and needs, for the sandbox (SYS_ADMIN: namespaces, mounts) and
    // the engine in it, Docker's default container set besides the cage's
    // own (an engine hands its containers only what it holds). Not ALL: an
    // engine that lacks one (a host dockerd without CAP_SYS_RESOURCE, seen
    // here) refuses to start the container. All of them are the container's
    // user namespace's under sysbox, none the host's; cage-init passes none
    // on: dnsguard keeps two, the agent none, and the engine's root holds
    // its capabilities only in the sandbox's own user namespace.
    add({"--cap-drop", "ALL"});
    for (const char* cap : {"NET_ADMIN", "NET_BIND_SERVICE", "SETUID", "SETGID", "SETPCAP", "CHOWN", "DAC_OVERRIDE",
                            "FOWNER", "KILL", "SYS_ADMIN", "NET_RAW", "MKNOD", "SYS_CHROOT", "FSETID", "SETFCAP",
                            "AUDIT_WRITE"}) {
      add({"--cap-add", cap});
    }
  } else {
    add({"--cap-drop", "ALL"});
    for (const char* cap : {"NET_ADMIN", "NET_BIND_SERVICE", "SETUID", "SETGID", "SETPCAP", "CHOWN",
                            "DAC_OVERRIDE", "FOWNER", "KILL"}) {
      add({"--cap-add", cap});
    }
  }
  for (const Mount& m : spec.mounts.mounts) add_all(render_bind(m.source, m.target, m.readonly));
  // The policy is read-only: the cage must not widen its own allowlist.
  add_all(render_bind(spec.policy_file, kContainerPolicy, true));
  add_all(render_bind(spec.log_dir, kContainerLogDir, false));
  if (spec.ca_bundle) add_all(render_bind(*spec.ca_bundle, kContainerCaBundle, true));
  // Read-only is no obstacle: connecting needs write permission on the
  // socket, which a read-only mount does not take away from a socket.
  if (spec.owner_socket) add_all(render_bind(*spec.owner_socket, kContainerOwnerSocket, true));
  if (spec.secrets_socket) add_all(render_bind(*spec.secrets_socket, kContainerSecretsSocket, true));
  for (const std::string& e : spec.secret_env) add({"-e", e});
  // The workspace's own home volume (created on first use, labelled so
  // --reset v finds every one of them), or an anonymous one (--rm removes it).
  // The path label is escaped (docker volume inspect prints it as is) and
  // CSV-quoted when it holds a comma or a quote.
  const std::string path_label =
      "volume-label=" + std::string(kHomeWorkspaceLabel) + "=" + printable(spec.workspace.string());
  add({"--mount", "type=volume," + (spec.home_volume ? "source=" + *spec.home_volume + "," : std::string()) +
                      "target=/home/agent,volume-label=" + kHomeLabel + "=" + spec.home_volume_prefix + "," +
                      (path_label.find_first_of(",\"") == std::string::npos ? path_label : csv_field(path_label)),
       "-w", kContainerWorkspace});
  if (spec.sysbox) add({"--runtime", "sysbox-runc"});
  add_all(spec.extra_args);
  argv.push_back(spec.image);
  if (spec.ca_bundle) add({"--ca-bundle", kContainerCaBundle});
  if (spec.owner_socket) add({"--owner", kContainerOwnerSocket});
  if (spec.secrets_socket) add({"--secrets", kContainerSecretsSocket});
  if (spec.sysbox) add({"--nested-docker", kContainerDockerd});
  if (!spec.command.empty()) {
    argv.push_back("--");
    add_all(spec.command);
  }
  return argv;
}

bool valid_home_volume_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() > 64) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char c = prefix[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

std::string home_volume_name(const std::string& prefix, const std::string& workspace_identity) {
  // 64 bits of the identity's hash: distinct directories never meet by
  // accident, and the name says nothing about the directory.
  return prefix + "-" + sha256_hex("home volume\n" + workspace_identity).substr(0, 16);
}

std::vector<std::string> render_build_argv(const BuildSpec& spec) {
  std::vector<std::string> argv = {"docker", "build", "-f", (spec.context / "image" / spec.dockerfile).string()};
  if (!spec.target.empty()) {
    argv.insert(argv.end(), {"--target", spec.target, "-t", spec.image});
  } else {
    argv.insert(argv.end(), {"-t", spec.image, "--label", std::string(kHashLabel) + "=" + spec.context_hash});
  }
  for (const std::string& tag : spec.also_tagged) argv.insert(argv.end(), {"-t", tag});
  // The legacy builder keeps the container of a failed step (e.g. npm
  // behind a proxy) unless told otherwise.
  argv.emplace_back("--force-rm");
  for (const auto& [name, value] : spec.build_args) {
    argv.push_back("--build-arg");
    argv.push_back(name + "=" + value);
  }
  argv.push_back(spec.context.string());
  return argv;
}

}  // namespace cagent::launcher::host
