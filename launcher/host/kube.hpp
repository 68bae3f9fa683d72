#pragma once
// `cagent kube [options] [-- command…]`: the same cage as a Kubernetes Pod
// (or a Job around it), printed as YAML for kubectl apply.
//
//   effective config ─plan_session()─▶ PreparedSession (Config + MountPlan)
//     ─plan_kube()─▶ KubeManifest (pure, unit-tested) ─render_kube_yaml()─▶ YAML (yaml-cpp emitter)
//
// The Pod is the Docker form's cage split over containers that share one
// network namespace, all from the same image and the same cage-init:
//
//   ConfigMap  policy.toml — the session policy, from the same writer as
//              the Docker form's (render_policy_toml) — and an empty file
//              for `ignore` placeholders
//   init  guard     cage-init --mode guard: the policy checked, the ruleset
//                   installed (NET_ADMIN and nothing else), exit; a failure
//                   fails the Pod before any other container starts
//   init  dnsguard  cage-init --mode dnsguard: dnsguard under its own uid,
//                   supervised; a native sidecar (restartPolicy: Always,
//                   a startup probe: cage-init --mode probe) — or, with
//                   --classic-sidecar, an ordinary container beside the agent
//   agent           cage-init --mode agent -- COMMAND: a non-root uid, every
//                   capability dropped, no privilege escalation,
//                   RuntimeDefault seccomp; waits for dnsguard, refuses to
//                   run while it holds any privilege, runs the command
//
// Pod-wide: dnsPolicy None with 127.0.0.1 as the only nameserver (dnsguard),
// no service account token, no service links, ip_unprivileged_port_start
// 1024 (no uid but root's may bind a low port and pose as a resolver).
//
// dnsguard's upstream must be named (`dns_resolvers`: the cluster's DNS
// service): dnsPolicy is Pod-wide, so no container of the Pod sees the
// cluster's resolv.conf to discover it from, and what the generator could
// look up on this machine need not be the cluster's. The ruleset admits
// DNS to it only on flows dnsguard opened (the Docker form's owned-flow
// rules, the same nft code).
//
// The workspace is a PersistentVolumeClaim (--claim): a CI runner prepares
// the checkout on it (or a previous Job left it), and what the agent
// changed stays there for the next step to read. `ignore` and `readonly`
// paths are those the scan finds in this checkout: read-only placeholders
// (an emptyDir, or the ConfigMap's empty file) and read-only subPath
// mounts of the claim.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/host/config.hpp"
#include "launcher/host/mount_plan.hpp"
#include "launcher/host/process.hpp"
#include "launcher/host/session.hpp"

namespace cagent::launcher::host {

// The image's accounts (image/Dockerfile pins them): the Pod names the
// agent's uid and gid, since a container's runAsNonRoot can only be
// verified for a numeric uid.
inline constexpr uid_t kImageAgentUid = 1000;
inline constexpr gid_t kImageAgentGid = 1000;
inline constexpr const char* kKubeCageInit = "/usr/local/bin/cage-init";
inline constexpr const char* kKubeWorkspace = "/workspace";
inline constexpr const char* kKubePolicyDir = "/etc/cagent";

// What `cagent kube` adds to the ordinary options.
struct KubeOptions {
  bool job = false;              // a batch/v1 Job around the Pod
  bool classic_sidecar = false;  // dnsguard as an ordinary container
  std::optional<std::string> image;  // default: the host's image name
  std::optional<std::string> claim;  // default: cagent-workspace
};

// ---- the manifest model ------------------------------------------------------

struct KubeMount {
  std::string volume;
  std::string mount_path;
  std::string sub_path;  // "" for the volume's root
  bool read_only = false;
  bool operator==(const KubeMount&) const = default;
};

struct KubeVolume {
  enum class Kind { config_map, claim, empty_dir } kind = Kind::empty_dir;
  std::string name;
  std::string source;  // the ConfigMap's or the claim's name
  bool operator==(const KubeVolume&) const = default;
};

struct KubeSecurity {
  std::optional<std::int64_t> run_as_user, run_as_group;
  bool run_as_non_root = false;
  std::vector<std::string> add;  // capabilities added after dropping ALL
  bool operator==(const KubeSecurity&) const = default;
};

struct KubeContainer {
  std::string name;
  std::vector<std::string> command;
  KubeSecurity security;
  std::vector<KubeMount> mounts;
  std::optional<std::string> restart_policy;          // "Always": a native sidecar
  std::vector<std::string> startup_probe;              // exec; empty: none
  bool interactive = false;                            // stdin + tty (no command: a shell)
  bool operator==(const KubeContainer&) const = default;
};

struct KubeManifest {
  std::string name;         // the Pod's (or the Job's); the ConfigMap is <name>-policy
  std::string config_map;
  std::string image;
  bool job = false;
  std::string policy_toml;  // ConfigMap key policy.toml
  std::vector<KubeContainer> init_containers;
  std::vector<KubeContainer> containers;
  std::vector<KubeVolume> volumes;
  std::int64_t fs_group = kImageAgentGid;
  std::vector<std::string> warnings;  // what the Pod cannot express, for stderr
};

struct KubeInput {
  Config config;
  MountPlan mounts;
  std::filesystem::path workspace;        // the host directory the mount plan was made for
  std::filesystem::path placeholder_dir;  // where plan_mounts put the shared placeholders
  std::vector<std::string> command;       // empty: the agent's login shell
  KubeOptions options;
  std::string default_image;
};

// A DNS-1123 label from the workspace directory's name: "cagent-<name>",
// lower case, other characters as '-', at most 52 characters (a Job's Pods
// add a suffix to it).
std::string kube_name(const std::filesystem::path& workspace);

// A DNS-1123 subdomain (what a claim's name must be): [a-z0-9] at both
// ends, [a-z0-9.-] between, at most 253 characters.
bool valid_kube_name(const std::string& name);

// Pure. Throws UsageError when the configuration cannot become a Pod (no
// dns_resolvers). Paths the Pod cannot express become warnings.
KubeManifest plan_kube(const KubeInput& input);

// ConfigMap, then Pod or Job: a YAML stream of two documents.
std::string render_kube_yaml(const KubeManifest& manifest);

// The whole command: the session's plan (nothing written, no engine
// needed), the manifest on io.out, warnings on io.err.
int run_kube(const CliOptions& cli, const KubeOptions& options, const HostContext& host, ProcessRunner& runner,
             SessionIo io);

}  // namespace cagent::launcher::host
