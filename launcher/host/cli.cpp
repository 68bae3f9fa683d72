#include "launcher/host/cli.hpp"

namespace cagent::launcher::host {
namespace {

bool valid_reset(std::string_view letters) {
  return !letters.empty() && letters.find_first_not_of("civd") == std::string_view::npos;
}

// ---- what each option of the main command line does ------------------------
using Value = std::optional<std::string>;

template <bool CliOptions::*Flag>
void set_flag(CliOptions& o, const Value& /*value*/, const SourcePos& /*pos*/) {
  o.*Flag = true;
}

// -d, -i, -r, --arg, --ca-cert: an entry of the flags layer, with where it
// stood (config errors name "command line:N").
template <std::vector<Entry> ConfigEntries::*List>
void add_entry(CliOptions& o, const Value& value, const SourcePos& pos) {
  (o.flags.*List).push_back(Entry{*value, pos});
}

void set_learn(CliOptions& o, const Value& /*value*/, const SourcePos& pos) {
  o.flags.learn = Entry{"true", pos};
}

void set_ask(CliOptions& o, const Value& /*value*/, const SourcePos& pos) {
  o.flags.ask = Entry{"true", pos};
}

void set_ask_timeout(CliOptions& o, const Value& value, const SourcePos& pos) {
  o.flags.ask_timeout = Entry{*value, pos};  // checked with the config's (validate)
}

void set_config(CliOptions& o, const Value& value, const SourcePos& /*pos*/) {
  o.config_file = *value;
}

void set_reset(CliOptions& o, const Value& value, const SourcePos& /*pos*/) {
  const std::string letters = value.value_or(kDefaultReset);
  if (!valid_reset(letters)) {
    throw UsageError(
        "--reset takes letters from 'civd' (c=containers, i=image, v=volume, "
        "d=~/.cagent), not '" +
        letters + "'");
  }
  o.reset = letters;
}

void set_reset_all(CliOptions& o, const Value& /*value*/, const SourcePos& /*pos*/) {
  o.reset = "civd";
}

// The table. Order is the order of --help and the man page.
constexpr OptionSpec kOptions[] = {
    {.name = "domain",
     .short_name = 'd',
     .arg = ArgKind::required,
     .metavar = "NAME",
     .help = "allow NAME (exact) or *.suffix (any name below) in addition to the config",
     .example = "cagent -d pypi.org -- pip install x",
     .repeatable = true,
     .apply = &add_entry<&ConfigEntries::domains>},
    {.name = "ignore",
     .short_name = 'i',
     .arg = ArgKind::required,
     .metavar = "PATTERN",
     .help = "hide matching paths behind empty read-only placeholders",
     .detail = "Patterns are gitignore-style: name at any depth, /name at the workspace root, "
               "dir/ directories only, ** across directories.",
     .example = "cagent -i 'secrets/' -- ls",
     .repeatable = true,
     .complete = Complete::files,
     .apply = &add_entry<&ConfigEntries::ignore>},
    {.name = "readonly",
     .short_name = 'r',
     .arg = ArgKind::required,
     .metavar = "PATTERN",
     .help = "mount matching paths read-only",
     .example = "cagent -r /vendor",
     .repeatable = true,
     .complete = Complete::files,
     .apply = &add_entry<&ConfigEntries::readonly>},
    {.name = "arg",
     .arg = ArgKind::required,
     .metavar = "ARG",
     .help = "one extra `docker run` argument",
     .example = "cagent --arg -e --arg ANTHROPIC_API_KEY",
     .repeatable = true,
     .apply = &add_entry<&ConfigEntries::extra_args>},
    {.name = "ca-cert",
     .arg = ArgKind::required,
     .metavar = "FILE",
     .help = "trust this PEM CA certificate (system: this host's bundle)",
     .detail = "In the image build and inside the cage, for a TLS-intercepting proxy.",
     .example = "cagent --ca-cert ~/corp-root.pem",
     .repeatable = true,
     .complete = Complete::files_and_words,
     .words = "system",
     .apply = &add_entry<&ConfigEntries::ca_certificates>},
    {.name = "learn",
     .help = "learn mode: every name resolves and connects for this session; at the end, the names to allow",
     .detail = "Still through dnsguard and the connection gate (name-bound), private and metadata addresses still "
               "never reachable, inbound still closed; but every destination is open, DNS tunnelling included, so "
               "use it on a trusted project only. At exit cagent prints the proposal (sibling names folded into "
               "*.registrable-domain) and keeps it for cagent allow --save --from-learned. Also `learn: true` in "
               "the global config; never from a workspace .cagent.yaml.",
     .example = "cagent --learn -- npm install",
     .apply = &set_learn},
    {.name = "ask",
     .help = "ask mode: while cagent watch runs, a denied lookup waits for your key instead of failing at once",
     .detail = "The lookup is held up to --ask-timeout seconds (default 10) while a cagent watch is attached to "
               "the session; allowed in time, the agent's request simply succeeds, else it is denied as without "
               "ask mode. Without a watcher nothing is held. Also `ask: true` in the global config; never from a "
               "workspace .cagent.yaml.",
     .example = "cagent --ask -- npm install",
     .apply = &set_ask},
    {.name = "ask-timeout",
     .arg = ArgKind::required,
     .metavar = "SECONDS",
     .help = "how long ask mode holds a denied lookup for a decision (1-60, default 10)",
     .detail = "A resolver's client gives up after about 10 s; also `ask_timeout:` in the global config.",
     .example = "cagent --ask --ask-timeout 5",
     .apply = &set_ask_timeout},
    {.name = "config",
     .short_name = 'c',
     .arg = ArgKind::required,
     .metavar = "FILE",
     .help = "use FILE instead of ~/.cagent/config.yaml",
     .example = "cagent -c ./ci-cagent.yaml -- make",
     .complete = Complete::files,
     .apply = &set_config},
    {.name = "no-global-config",
     .help = "use the built-in default instead of ~/.cagent/config.yaml",
     .example = "cagent --no-global-config -- true",
     .apply = &set_flag<&CliOptions::no_global_config>},
    {.name = "print-config",
     .help = "print the merged configuration (each entry with its origin) and exit",
     .example = "cagent --print-config",
     .apply = &set_flag<&CliOptions::print_config>},
    {.name = "dry-run",
     .help = "print the docker commands that would run and exit",
     .example = "cagent --dry-run -- true",
     .apply = &set_flag<&CliOptions::dry_run>},
    {.name = "no-update",
     .help = "skip the image rebuild check and the daily update check",
     .example = "cagent --no-update",
     .apply = &set_flag<&CliOptions::no_update>},
    {.name = "accept-workspace-config",
     .help = "approve ./.cagent.yaml exactly as it is now for this directory, and use it",
     .detail = "Read it first: a session or a cloned repository may have written it. Without an "
               "approval a workspace .cagent.yaml is shown and asked about on a terminal, else "
               "ignored with a warning.",
     .example = "cagent --accept-workspace-config -- make",
     .apply = &set_flag<&CliOptions::accept_workspace_config>},
    {.name = "reset",
     .arg = ArgKind::optional,
     .metavar = "civd",
     .help = "remove c=containers i=image v=home volumes d=~/.cagent (default: ci), then exit",
     .detail = "Containers are those labelled cagent.session; v removes the agent's home volume of "
               "every workspace. Asks first; without a terminal it refuses unless -y. Workspace "
               "files are never touched.",
     .example = "cagent --reset=iv",
     .complete = Complete::words,
     .words = "ci civd c i v d",
     .apply = &set_reset,
     .accepts_next = &valid_reset},
    {.name = "reset-all",
     .help = "the same as --reset=civd",
     .example = "cagent --reset-all -y",
     .apply = &set_reset_all},
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation",
     .apply = &set_flag<&CliOptions::yes>},
    {.name = "version",
     .help = "print the version and exit",
     .apply = &set_flag<&CliOptions::version>},
    {.name = "help",
     .short_name = 'h',
     .help = "print this help and exit",
     .apply = &set_flag<&CliOptions::help>},
    // The subcommands' options (parsed by parse_live_command).
    {.name = "session",
     .arg = ArgKind::required,
     .metavar = "ID",
     .help = "only the cage of session ID (see cagent ps)",
     .example = "cagent allow pypi.org --session 20261128-0947-ab12",
     .commands = kAllow | kDeny},
    {.name = "save",
     .arg = ArgKind::optional,
     .metavar = "workspace|global",
     .help = "also append the names to ./.cagent.yaml's domains (=global: ~/.cagent/config.yaml's)",
     .detail = "Keeps the file's comments and layout, and counts as your approval of the result: "
               "it refuses a workspace file you have not approved.",
     .example = "cagent allow pypi.org --save",
     .commands = kAllow,
     .complete = Complete::words,
     .words = "workspace global"},
    {.name = "from-learned",
     .help = "the names the last learn session of this workspace proposed (see --learn)",
     .detail = "The proposal cagent printed at the end of cagent --learn, kept in ~/.cagent (never in the "
               "workspace, which the agent can write). Review it there first.",
     .example = "cagent allow --save --from-learned",
     .commands = kAllow},
    {.name = "json",
     .help = "one JSON object per line",
     .example = "cagent ps --json",
     .commands = kPs | kLog},
    {.name = "follow",
     .short_name = 'f',
     .help = "go on printing until the session's cage is gone",
     .example = "cagent log -f",
     .commands = kLog},
    {.name = "name",
     .arg = ArgKind::required,
     .metavar = "NAME",
     .help = "the allowed name to resolve and connect to (default: the first exact name of the allowlist)",
     .example = "cagent check --name pypi.org",
     .commands = kCheck},
    {.name = "job",
     .help = "a batch/v1 Job around the Pod (one run, no retry)",
     .example = "cagent kube --job -- make test",
     .commands = kKube},
    {.name = "claim",
     .arg = ArgKind::required,
     .metavar = "NAME",
     .help = "the PersistentVolumeClaim holding the workspace (default: cagent-workspace)",
     .example = "cagent kube --claim ci-checkout-42 -- make",
     .commands = kKube},
    {.name = "image",
     .arg = ArgKind::required,
     .metavar = "REF",
     .help = "the image the Pod runs (default: cagent:latest, or CAGENT_IMAGE)",
     .detail = "The cagent image, built by cagent and pushed where the cluster pulls from.",
     .example = "cagent kube --image registry.example/cagent:1 -- make",
     .commands = kKube},
    {.name = "classic-sidecar",
     .help = "dnsguard as an ordinary container, for clusters without native sidecars (before 1.29)",
     .detail = "The agent's cage-init then waits for dnsguard itself; a Job's Pod does not end by itself "
               "(dnsguard keeps running after the agent).",
     .example = "cagent kube --classic-sidecar -- make",
     .commands = kKube},
};

constexpr SubcommandSpec kSubcommands[] = {
    {"allow", kAllow, "NAME…",
     "open NAME (or *.suffix) in the running cage(s) of this workspace, at once",
     "cagent allow pypi.org '*.pythonhosted.org'"},
    {"deny", kDeny, "NAME…", "take back a name allowed at run time", "cagent deny pypi.org"},
    {"ps", kPs, "", "the running cages: session, age, blocked counts, workspace, command",
     "cagent ps"},
    {"log", kLog, "[SESSION]",
     "a session's decisions (default: this workspace's running cage, else the newest session)",
     "cagent log -f"},
    {"check", kCheck, "[OPTIONS]",
     "prove the enforcement of this workspace's configuration (with the ordinary OPTIONS) in a throwaway cage: "
     "a table, exit 1 on any failure",
     "cagent check"},
    {"watch", kWatch, "[--all] [SESSION]",
     "follow the denied lookups of your running cages (or SESSION's; --all: every user's on the engine) and decide "
     "each with one key: a allow, "
     "w save to the workspace, g save globally, d keep denied, q quit; with --ask they wait for the key",
     "cagent watch"},
    {"kube", kKube, "",
     "print this workspace's cage as a Kubernetes Pod (ConfigMap + Pod YAML; --job: a Job), with the ordinary "
     "options and -- COMMAND",
     "cagent kube -c ci.yaml --job -- make test"},
};

constexpr EnvironmentSpec kEnvironment[] = {
    {"CAGENT_HOME", "cagent's own directory, instead of ~/.cagent"},
    {"CAGENT_IMAGE", "the image tag (default cagent:latest)"},
    {"CAGENT_HOME_VOLUME", "prefix of the agent's home volumes (default cagent-home)"},
    {"CAGENT_CONTEXT", "the image context directory (default: the one installed with cagent)"},
    {"CAGENT_NPM_PACKAGES",
     "agent CLIs installed in the image (default @anthropic-ai/claude-code @openai/codex; empty: "
     "none)"},
    {"CAGENT_BASE_IMAGE", "the base image of the build (default debian:bookworm-slim)"},
};

const OptionSpec* find_long(std::string_view name, unsigned command) {
  for (const OptionSpec& o : kOptions) {
    if ((o.commands & command) != 0 && o.name == name) return &o;
  }
  return nullptr;
}

const OptionSpec* find_short(char c, unsigned command) {
  for (const OptionSpec& o : kOptions) {
    if ((o.commands & command) != 0 && o.short_name != 0 && o.short_name == c) return &o;
  }
  return nullptr;
}

class Parser {
 public:
  explicit Parser(const std::vector<std::string>& args) : args_(args) {
    out_.flags.kind = LayerKind::flags;
    out_.flags.origin = "command line";
  }

  CliOptions parse() {
    while (i_ < args_.size()) {
      const std::string& a = args_[i_];
      if (a == "--") {
        out_.command.assign(args_.begin() + static_cast<long>(i_) + 1, args_.end());
        break;
      }
      if (a.rfind("--", 0) == 0) {
        long_option(a);
      } else if (a.size() > 1 && a[0] == '-') {
        short_option(a);
      } else {
        throw UsageError("unexpected argument '" + a + "' (put the command after --: cagent -- " +
                         a + " …)");
      }
      ++i_;
    }
    return std::move(out_);
  }

 private:
  // Where the word just consumed stood (config errors name it).
  SourcePos here() const { return SourcePos{"command line", static_cast<int>(i_) + 1, 0}; }

  // Applies `spec` with the value written in the same word (`inline_value`),
  // else the next word as its kind says.
  void take(const OptionSpec& spec, const std::string& name,
            const std::optional<std::string>& inline_value) {
    Value v = inline_value;
    switch (spec.arg) {
      case ArgKind::none:
        if (v) throw UsageError("option " + name + " takes no value");
        break;
      case ArgKind::required:
        if (!v) {
          if (i_ + 1 >= args_.size()) throw UsageError("option " + name + " needs a value");
          v = args_[++i_];
        }
        break;
      case ArgKind::optional:
        if (!v && i_ + 1 < args_.size() && spec.accepts_next != nullptr &&
            spec.accepts_next(args_[i_ + 1])) {
          v = args_[++i_];
        }
        break;
    }
    spec.apply(out_, v, here());
  }

  void long_option(const std::string& a) {
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const OptionSpec* spec = find_long(std::string_view(name).substr(2), kMain);
    if (spec == nullptr) throw UsageError("unknown option '" + name + "' (see cagent --help)");
    take(*spec, name,
         eq == std::string::npos ? std::nullopt : std::optional<std::string>(a.substr(eq + 1)));
  }

  void short_option(const std::string& a) {
    const OptionSpec* spec = find_short(a[1], kMain);
    if (spec == nullptr) throw UsageError("unknown option '" + a + "' (see cagent --help)");
    // "-dvalue" and "-d=value" carry the value in the same word.
    const std::optional<std::string> attached =
        a.size() > 2 ? std::optional<std::string>(a.substr(a[2] == '=' ? 3 : 2)) : std::nullopt;
    take(*spec, a.substr(0, 2), attached);
  }

  const std::vector<std::string>& args_;
  std::size_t i_ = 0;
  CliOptions out_;
};

}  // namespace

std::span<const OptionSpec> option_table() {
  return kOptions;
}
std::span<const SubcommandSpec> subcommand_table() {
  return kSubcommands;
}
std::span<const EnvironmentSpec> environment_table() {
  return kEnvironment;
}

std::string long_form(const OptionSpec& o) {
  std::string s = "--" + std::string(o.name);
  if (o.arg == ArgKind::required) s += " " + std::string(o.metavar);
  if (o.arg == ArgKind::optional) s += "[=" + std::string(o.metavar) + "]";
  return s;
}

CliOptions parse_cli(const std::vector<std::string>& args) {
  CliOptions o = Parser(args).parse();
  if (o.config_file && o.no_global_config) {
    throw UsageError("-c/--config and --no-global-config exclude each other");
  }
  return o;
}

}  // namespace cagent::launcher::host
