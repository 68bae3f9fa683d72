#include "launcher/host/cli.hpp"

#include <string_view>

namespace cagent::launcher::host {
namespace {

bool valid_reset(std::string_view letters) {
  return !letters.empty() && letters.find_first_not_of("civd") == std::string_view::npos;
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
        throw UsageError("unexpected argument '" + a + "' (put the command after --: cagent -- " + a +
                         " …)");
      }
      ++i_;
    }
    return std::move(out_);
  }

 private:
  // Value of an option: "--name=value", or the next argument.
  std::string value(const std::string& name, const std::optional<std::string>& inline_value) {
    if (inline_value) return *inline_value;
    if (i_ + 1 >= args_.size()) throw UsageError("option " + name + " needs a value");
    return args_[++i_];
  }

  void add(std::vector<Entry>& list, std::string v) {
    list.push_back(Entry{std::move(v), SourcePos{"command line", static_cast<int>(i_) + 1, 0}});
  }

  void no_value(const std::string& name, const std::optional<std::string>& inline_value) {
    if (inline_value) throw UsageError("option " + name + " takes no value");
  }

  void long_option(const std::string& a) {
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const std::optional<std::string> inline_value =
        eq == std::string::npos ? std::nullopt : std::optional<std::string>(a.substr(eq + 1));
    if (name == "--help") {
      no_value(name, inline_value);
      out_.help = true;
    } else if (name == "--version") {
      no_value(name, inline_value);
      out_.version = true;
    } else if (name == "--no-update") {
      no_value(name, inline_value);
      out_.no_update = true;
    } else if (name == "--print-config") {
      no_value(name, inline_value);
      out_.print_config = true;
    } else if (name == "--dry-run") {
      no_value(name, inline_value);
      out_.dry_run = true;
    } else if (name == "--no-global-config") {
      no_value(name, inline_value);
      out_.no_global_config = true;
    } else if (name == "--accept-workspace-config") {
      no_value(name, inline_value);
      out_.accept_workspace_config = true;
    } else if (name == "--yes") {
      no_value(name, inline_value);
      out_.yes = true;
    } else if (name == "--reset-all") {
      no_value(name, inline_value);
      out_.reset = "civd";
    } else if (name == "--reset") {
      std::string letters = kDefaultReset;
      if (inline_value) {
        letters = *inline_value;
      } else if (i_ + 1 < args_.size() && valid_reset(args_[i_ + 1])) {
        letters = args_[++i_];  // "--reset civd"
      }
      if (!valid_reset(letters)) {
        throw UsageError("--reset takes letters from 'civd' (c=containers, i=image, v=volume, "
                         "d=~/.cagent), not '" + letters + "'");
      }
      out_.reset = letters;
    } else if (name == "--domain") {
      add(out_.flags.domains, value(name, inline_value));
    } else if (name == "--ignore") {
      add(out_.flags.ignore, value(name, inline_value));
    } else if (name == "--readonly") {
      add(out_.flags.readonly, value(name, inline_value));
    } else if (name == "--arg") {
      add(out_.flags.extra_args, value(name, inline_value));
    } else if (name == "--ca-cert") {
      add(out_.flags.ca_certificates, value(name, inline_value));
    } else if (name == "--config") {
      out_.config_file = value(name, inline_value);
    } else {
      throw UsageError("unknown option '" + name + "' (see cagent --help)");
    }
  }

  void short_option(const std::string& a) {
    const char c = a[1];
    const std::optional<std::string> attached =
        a.size() > 2 ? std::optional<std::string>(a.substr(a[2] == '=' ? 3 : 2)) : std::nullopt;
    const std::string name = std::string("-") + c;
    switch (c) {
      case 'h': no_value(name, attached); out_.help = true; break;
      case 'y': no_value(name, attached); out_.yes = true; break;
      case 'd': add(out_.flags.domains, value(name, attached)); break;
      case 'i': add(out_.flags.ignore, value(name, attached)); break;
      case 'r': add(out_.flags.readonly, value(name, attached)); break;
      case 'c': out_.config_file = value(name, attached); break;
      default: throw UsageError("unknown option '" + a + "' (see cagent --help)");
    }
  }

  const std::vector<std::string>& args_;
  std::size_t i_ = 0;
  CliOptions out_;
};

}  // namespace

CliOptions parse_cli(const std::vector<std::string>& args) {
  CliOptions o = Parser(args).parse();
  if (o.config_file && o.no_global_config) {
    throw UsageError("-c/--config and --no-global-config exclude each other");
  }
  return o;
}

std::string usage_text() {
  return R"(usage: cagent [options] [-- command [args…]]
       cagent allow|deny NAME… [--session ID]   open/close a name in the running cage(s)
       cagent ps [--json]                       the running cages
       cagent log [SESSION] [-f] [--json]       a session's denied lookups and refusals

Runs the command (default: a login shell) in a locked-down container with the
current directory at /workspace. Exit status: the command's; 125 when docker
fails; 2 for usage errors.

options:
  -d, --domain NAME      allow NAME (or *.suffix) in addition to the config
  -i, --ignore PATTERN   hide matching paths behind empty placeholders
  -r, --readonly PATTERN mount matching paths read-only
      --arg ARG          extra `docker run` argument (repeatable)
      --ca-cert FILE     trust this PEM CA certificate (repeatable; "system" = host bundle)
  -c, --config FILE      use FILE instead of ~/.cagent/config.yaml
      --no-global-config use the built-in default instead of ~/.cagent/config.yaml
      --print-config     print the merged configuration and exit
      --dry-run          print the docker commands that would run and exit
      --no-update        skip the image rebuild check and the update check
      --accept-workspace-config
                         approve ./.cagent.yaml as it is now for this
                         directory, and use it (read it first: a session or
                         a cloned repository may have written it)
      --reset[=civd]     remove c=containers i=image v=home volumes d=~/.cagent
                         (default: ci), then exit; asks first unless -y
      --reset-all        same as --reset=civd
  -y, --yes              do not ask for confirmation
      --version          print the version and exit
  -h, --help             this help

environment: CAGENT_HOME (default ~/.cagent), CAGENT_IMAGE (default cagent:latest),
CAGENT_HOME_VOLUME (home volume prefix, default cagent-home), CAGENT_CONTEXT (image
context), CAGENT_NPM_PACKAGES, CAGENT_BASE_IMAGE (build args).
)";
}

}  // namespace cagent::launcher::host
