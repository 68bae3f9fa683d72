#include <doctest/doctest.h>

#include <algorithm>

#include <string>

#include "launcher/host/cli.hpp"
#include "launcher/host/config.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/policy.hpp"

using namespace cagent::launcher::host;

namespace {

ConfigLayer layer(const std::string& yaml, const std::string& origin, LayerKind kind) {
  return load_config(yaml, origin, kind);
}

std::vector<std::string> values(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const Entry& e : entries) out.push_back(e.value);
  return out;
}

// The message of the ConfigError thrown by f.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("load: keys and positions") {
  const ConfigLayer l = layer("domains:\n  - a.example\n  - '*.b.example'\nignore: [x, y]\n",
                              "/c.yaml", LayerKind::base);
  REQUIRE(l.domains.size() == 2);
  CHECK(l.domains[1].value == "*.b.example");
  CHECK(l.domains[1].pos.str() == "/c.yaml:3:5");
  CHECK(values(l.ignore) == std::vector<std::string>{"x", "y"});
  CHECK(layer("", "/e.yaml", LayerKind::base).domains.empty());
  CHECK(layer("# only a comment\n", "/e.yaml", LayerKind::base).domains.empty());
  CHECK(layer("domains:\n", "/e.yaml", LayerKind::base).domains.empty());
}

TEST_CASE("load: errors name file:line:column") {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"domains: [a.example]\nfrobnicate: [1]\n", "/w.yaml:2:1: unknown key 'frobnicate'"},
      {"domains: a.example\n", "/w.yaml:1:10: 'domains' must be a list of strings, not a scalar"},
      {"ignore:\n  - [nested]\n", "/w.yaml:2:5: 'ignore' entries must be strings, not a list"},
      {"ignore:\n  - {a: b}\n", "/w.yaml:2:5: 'ignore' entries must be strings, not a mapping"},
      {"- a\n- b\n", "/w.yaml:1:1: the config must be a mapping of keys, not a list"},
      {"domains: [a.example]\ndomains: [b.example]\n", "/w.yaml:2:1: duplicate key 'domains'"},
      {"domains: [a.example\n", "/w.yaml:"},  // invalid YAML, position from the parser
      {"extra_args:\n  - ~\n", "/w.yaml:2:5: 'extra_args' entries must be strings, not null"},
  };
  for (const Case& c : cases) {
    const std::string yaml_text = c.yaml;
    CAPTURE(yaml_text);
    const std::string msg = error_of([&] { layer(c.yaml, "/w.yaml", LayerKind::workspace); });
    CAPTURE(msg);
    CHECK(msg.rfind(c.expected, 0) == 0);
  }
  CHECK(error_of([] { layer("domains: [a\n", "/w.yaml", LayerKind::base); }).find("invalid YAML") !=
        std::string::npos);
}

TEST_CASE("merge: lists appended in layer order, duplicates dropped, flags last") {
  const std::vector<ConfigLayer> layers = {
      layer("domains: [a.example, B.example]\nignore: [.env]\nreadonly: [.git]\n", "/g.yaml",
            LayerKind::base),
      layer("domains: [c.example, b.example.]\nignore: [secrets/, .env]\n", "/ws/.cagent.yaml",
            LayerKind::workspace),
      layer("domains: [d.example]\nreadonly: [docs]\n", "command line", LayerKind::flags),
  };
  const MergedConfig m = merge_layers(layers, {});
  CHECK(values(m.domains) == std::vector<std::string>{"a.example", "B.example", "c.example", "d.example"});
  CHECK(values(m.ignore) == std::vector<std::string>{".env", "secrets/"});
  CHECK(values(m.readonly) == std::vector<std::string>{".git", "docs"});
  CHECK(m.domains[2].pos.file == "/ws/.cagent.yaml");
}

TEST_CASE("merge: workspace extra_args need trust: global and flags always apply") {
  const std::vector<ConfigLayer> layers = {
      layer("extra_args: [-e, A=1]\n", "/g.yaml", LayerKind::base),
      layer("extra_args: [-v, '/:/host', --privileged]\n", "/ws/.cagent.yaml", LayerKind::workspace),
      layer("extra_args: [--cpus=2]\n", "command line", LayerKind::flags),
  };
  const MergedConfig untrusted = merge_layers(layers, {false, "echo /ws >> ~/.cagent/trusted"});
  CHECK(values(untrusted.extra_args) == std::vector<std::string>{"-e", "A=1", "--cpus=2"});
  REQUIRE(untrusted.warnings.size() == 1);
  CHECK(untrusted.warnings[0].find("/ws/.cagent.yaml") != std::string::npos);
  CHECK(untrusted.warnings[0].find("echo /ws >> ~/.cagent/trusted") != std::string::npos);

  const MergedConfig trusted = merge_layers(layers, {true, ""});
  CHECK(values(trusted.extra_args) ==
        std::vector<std::string>{"-e", "A=1", "-v", "/:/host", "--privileged", "--cpus=2"});
  CHECK(trusted.warnings.empty());
}

TEST_CASE("merge: workspace dns_resolvers and ca_certificates need trust too") {
  const std::vector<ConfigLayer> layers = {
      layer("dns_resolvers: [192.0.2.53]\nca_certificates: [system]\n", "/g.yaml", LayerKind::base),
      layer("domains: [ws.example]\nignore: [secret/]\nreadonly: [docs/]\n"
            "dns_resolvers: [203.0.113.66]\nca_certificates: [evil-ca.pem]\n",
            "/ws/.cagent.yaml", LayerKind::workspace),
      layer("dns_resolvers: [198.51.100.1]\nca_certificates: [/corp.pem]\n", "command line",
            LayerKind::flags),
  };
  const MergedConfig untrusted = merge_layers(layers, {false, "echo /ws >> ~/.cagent/trusted"});
  CHECK(values(untrusted.dns_resolvers) == std::vector<std::string>{"192.0.2.53", "198.51.100.1"});
  CHECK(values(untrusted.ca_certificates) == std::vector<std::string>{"system", "/corp.pem"});
  // domains, ignore and readonly apply from an untrusted workspace too.
  CHECK(values(untrusted.domains) == std::vector<std::string>{"ws.example"});
  CHECK(values(untrusted.ignore) == std::vector<std::string>{"secret/"});
  CHECK(values(untrusted.readonly) == std::vector<std::string>{"docs/"});
  REQUIRE(untrusted.warnings.size() == 1);
  const std::string& w = untrusted.warnings[0];
  CHECK(w.find("dns_resolvers") != std::string::npos);
  CHECK(w.find("ca_certificates") != std::string::npos);
  CHECK(w.find("extra_args") == std::string::npos);
  CHECK(w.find("/ws/.cagent.yaml") != std::string::npos);
  CHECK(w.find("global config") != std::string::npos);
  CHECK(w.find("echo /ws >> ~/.cagent/trusted") != std::string::npos);

  const MergedConfig trusted = merge_layers(layers, {true, ""});
  CHECK(values(trusted.dns_resolvers) ==
        std::vector<std::string>{"192.0.2.53", "203.0.113.66", "198.51.100.1"});
  CHECK(values(trusted.ca_certificates) == std::vector<std::string>{"system", "evil-ca.pem", "/corp.pem"});
  CHECK(trusted.warnings.empty());

  // Nothing to drop: no warning.
  const MergedConfig quiet = merge_layers(
      {layer("domains: [a.example]\n", "/ws/.cagent.yaml", LayerKind::workspace)}, {false, "x"});
  CHECK(quiet.warnings.empty());
}

TEST_CASE("validate: normalization and expansion") {
  const MergedConfig m = merge_layers(
      {layer("domains: [Example.COM., '*.Example.org']\n"
             "extra_args: ['-v', '~/data:/data', '$HOME/x', 'a~/b']\n"
             "dns_resolvers: [192.0.2.53, '198.51.100.1:5353', '2001:db8::1', '[2001:db8::2]:53']\n"
             "ca_certificates: [system, ~/corp.pem, rel.pem]\n",
             "/etc/cagent.yaml", LayerKind::base)},
      {});
  const Config c = validate(m, "/home/u");
  CHECK(c.domains == std::vector<std::string>{"example.com", "*.example.org"});
  CHECK(c.extra_args == std::vector<std::string>{"-v", "/home/u/data:/data", "/home/u/x", "a~/b"});
  std::vector<std::string> resolvers;
  for (const auto& r : c.dns_resolvers) resolvers.push_back(cagent::dnsguard::to_string(r));
  CHECK(resolvers == std::vector<std::string>{"192.0.2.53:53", "198.51.100.1:5353", "[2001:db8::1]:53",
                                              "[2001:db8::2]:53"});
  REQUIRE(c.ca_certificates.size() == 3);
  CHECK(c.ca_certificates[0].system);
  CHECK(c.ca_certificates[1].path == "/home/u/corp.pem");
  CHECK(c.ca_certificates[2].path == "/etc/rel.pem");  // relative to the naming file
}

TEST_CASE("validate: errors name the entry's position") {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"domains: ['bad domain']\n", "/v.yaml:1:11: bad domain 'bad domain'"},
      {"domains: ['a.*.example']\n", "/v.yaml:1:11: bad domain 'a.*.example': '*' is allowed only"},
      {"domains: ['*.']\n", "/v.yaml:1:11: bad domain '*.'"},
      {"domains: [x.example]\nignore: ['[oops']\n", "/v.yaml:2:10: bad ignore pattern '[oops'"},
      {"domains: [x.example]\nreadonly: ['!x']\n", "/v.yaml:2:12: bad readonly pattern '!x'"},
      {"domains: [x.example]\ndns_resolvers: [resolver.example]\n",
       "/v.yaml:2:17: bad dns_resolvers entry 'resolver.example'"},
      {"domains: [x.example]\ndns_resolvers: ['192.0.2.1:99999']\n", "/v.yaml:2:17: bad dns_resolvers"},
      {"domains: []\n", "config: the merged domain list is empty"},
  };
  for (const Case& c : cases) {
    const std::string yaml_text = c.yaml;
    CAPTURE(yaml_text);
    const std::string msg = error_of([&] {
      validate(merge_layers({layer(c.yaml, "/v.yaml", LayerKind::base)}, {}), "/home/u");
    });
    CAPTURE(msg);
    CHECK(msg.rfind(c.expected, 0) == 0);
  }
}

TEST_CASE("domains go through the policy's one pattern check") {
  const auto domains = [](const char* yaml) {
    return validate(merge_layers({layer(yaml, "/v.yaml", LayerKind::base)}, {}), "/home/u").domains;
  };
  CHECK(domains("domains: [GitHub.com, github.com., '*.githubusercontent.com', _dmarc.example.com]\n") ==
        std::vector<std::string>{"github.com", "*.githubusercontent.com", "_dmarc.example.com"});
  for (const char* bad : {"''", "'.'", "'*'", "'*.'", "a..b", "-a.example", "a-.example", "'a*.example'",
                          "'ex ample.com'", "'https://github.com'"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(domains((std::string("domains: [") + bad + "]\n").c_str()), ConfigError);
  }
}

TEST_CASE("the shipped default config loads, validates, and has no public DoH resolvers") {
  const std::string text = read_file(LAUNCHER_DEFAULT_CONFIG);
  const Config c = validate(merge_layers({layer(text, "default", LayerKind::base)}, {}), "/h");
  const auto has = [&](const std::string& d) {
    return std::find(c.domains.begin(), c.domains.end(), d) != c.domains.end();
  };
  for (const char* must : {"api.anthropic.com", "claude.ai", "platform.claude.com", "api.openai.com",
                           "chatgpt.com", "registry.npmjs.org", "pypi.org", "files.pythonhosted.org",
                           "proxy.golang.org", "sum.golang.org", "crates.io", "deb.debian.org",
                           "github.com", "api.github.com", "codeload.github.com",
                           "raw.githubusercontent.com", "objects.githubusercontent.com",
                           "release-assets.githubusercontent.com", "gitlab.com", "bitbucket.org",
                           "registry-1.docker.io", "openrouter.ai", "sts.amazonaws.com"}) {
    CAPTURE(must);
    CHECK(has(must));
  }
  for (const char* doh : {"dns.google", "cloudflare-dns.com", "one.one.one.one", "dns.quad9.net",
                          "doh.opendns.com", "mozilla.cloudflare-dns.com", "dns.nextdns.io"}) {
    CAPTURE(doh);
    CHECK_FALSE(has(doh));
  }
  for (const std::string& d : c.domains) CHECK(d.find("dns") == std::string::npos);
  const auto ro = [&](const char* path) {
    return std::any_of(c.readonly.begin(), c.readonly.end(),
                       [&](const Pattern& p) { return p.matches(path, false); });
  };
  CHECK(ro(".git"));
  CHECK(ro(".cagent.yaml"));
  CHECK(std::any_of(c.ignore.begin(), c.ignore.end(), [](const Pattern& p) { return p.matches(".env", false); }));
  CHECK(c.extra_args.empty());
  // The host's trust store by default: a corporate proxy the host trusts
  // must not break the image build or the agent's tools.
  REQUIRE(c.ca_certificates.size() == 1);
  CHECK(c.ca_certificates[0].system);
}

TEST_CASE("print-config renders every key with origins") {
  const MergedConfig m =
      merge_layers({layer("domains: [a.example]\n", "/g.yaml", LayerKind::base)}, {});
  const std::string out = render_config(m);
  CHECK(out.find("a.example  # /g.yaml:1:11") != std::string::npos);
  for (const char* key : {"ignore:", "readonly:", "domains:", "extra_args:", "dns_resolvers:",
                          "ca_certificates:"}) {
    CHECK(out.find(key) != std::string::npos);
  }
  // What --print-config prints loads back as a config.
  CHECK(values(load_config(out, "again", LayerKind::base).domains) ==
        std::vector<std::string>{"a.example"});
}

TEST_CASE("published ports: every docker spelling, the container side only, into the policy") {
  const ConfigLayer base = layer(
      "domains: [example.com]\n"
      "extra_args: [-e, X=1, -p, '8080:80', --publish, '127.0.0.1:5353:53/udp', '--publish=[::1]:9000:9000-9010',"
      " -p443, -v, '/a:/b']\n",
      "/g.yaml", LayerKind::base);
  Config c = validate(merge_layers({base}, MergeOptions{true, ""}), "/home/u");
  std::vector<std::string> ports;
  for (const auto& p : c.inbound) ports.push_back(cagent::dnsguard::to_string(p));
  CHECK(ports == std::vector<std::string>{"80/tcp", "53/udp", "9000-9010/tcp", "443/tcp"});
  CHECK(render_policy_toml(c).find("inbound = [ \"80/tcp\", \"53/udp\", \"9000-9010/tcp\", \"443/tcp\" ]") !=
        std::string::npos);
  c.inbound.clear();
  CHECK(render_policy_toml(c).find("inbound") == std::string::npos);  // nothing published: nothing comes in
  // What the policy refuses is refused here, not in the cage: port 0, a
  // backwards range.
  for (const char* bad : {"80/icmp", "8080:", "a:b", "80/tcp/x", "8080:0", "90-80", "80/TCP"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(inbound_port(bad), std::invalid_argument);
  }
}

TEST_CASE("published ports: an unreadable spec is a config error naming the entry") {
  const ConfigLayer base = layer("domains: [a.example]\nextra_args: [-p, '8080/icmp']\n", "/g.yaml", LayerKind::base);
  const MergedConfig merged = merge_layers({base}, MergeOptions{true, ""});
  const std::string what = error_of([&] { (void)validate(merged, "/home/u"); });
  CHECK(what.find("/g.yaml:2") != std::string::npos);
  CHECK(what.find("8080/icmp") != std::string::npos);
}

TEST_CASE("connection_gate: on by default, off only from trusted config") {
  const ConfigLayer base = layer("domains: [a.example]\n", "/g.yaml", LayerKind::base);
  CHECK(validate(merge_layers({base}, MergeOptions{false, "hint"}), "/h").connection_gate);
  const ConfigLayer global_off = layer("domains: [a.example]\nconnection_gate: false\n", "/g.yaml", LayerKind::base);
  CHECK_FALSE(validate(merge_layers({global_off}, MergeOptions{false, "hint"}), "/h").connection_gate);
  // A workspace (a cloned repository, or a file the agent planted) cannot
  // turn it off unless trusted; it may turn it back on.
  const ConfigLayer ws_off = layer("connection_gate: false\n", "/ws/.cagent.yaml", LayerKind::workspace);
  const MergedConfig untrusted = merge_layers({base, ws_off}, MergeOptions{false, "echo /ws >> trusted"});
  CHECK(validate(untrusted, "/h").connection_gate);
  REQUIRE(untrusted.warnings.size() == 1);
  CHECK(untrusted.warnings[0].find("connection_gate: false") != std::string::npos);
  CHECK_FALSE(validate(merge_layers({base, ws_off}, MergeOptions{true, ""}), "/h").connection_gate);
  const ConfigLayer ws_on = layer("connection_gate: true\n", "/ws/.cagent.yaml", LayerKind::workspace);
  CHECK(validate(merge_layers({global_off, ws_on}, MergeOptions{false, "hint"}), "/h").connection_gate);
  // Only true or false.
  CHECK(error_of([] { layer("connection_gate: maybe\n", "/g.yaml", LayerKind::base); }) ==
        "/g.yaml:1:18: 'connection_gate' must be true or false");
  // The session policy carries it.
  Config c;
  c.domains = {"a.example"};
  CHECK(render_policy_toml(c).find("enabled = true") != std::string::npos);
  c.connection_gate = false;
  CHECK(render_policy_toml(c).find("enabled = false") != std::string::npos);
  // --print-config shows where it came from.
  CHECK(render_config(merge_layers({global_off}, MergeOptions{})).find("connection_gate: false  # /g.yaml:2") !=
        std::string::npos);
}

TEST_CASE("learn: off by default, on only from the global config or the command line, never a workspace file") {
  const ConfigLayer base = layer("domains: [a.example]\n", "/g.yaml", LayerKind::base);
  CHECK_FALSE(validate(merge_layers({base}, MergeOptions{true, ""}), "/h").learn);
  const ConfigLayer global_on = layer("domains: [a.example]\nlearn: true\n", "/g.yaml", LayerKind::base);
  CHECK(validate(merge_layers({global_on}, MergeOptions{false, "hint"}), "/h").learn);
  ConfigLayer flags;
  flags.kind = LayerKind::flags;
  flags.learn = Entry{"true", SourcePos{"command line", 1, 0}};
  CHECK(validate(merge_layers({base, flags}, MergeOptions{false, "hint"}), "/h").learn);
  // A workspace file cannot turn it on, trusted or not, and says so once.
  const ConfigLayer ws_on = layer("learn: true\n", "/ws/.cagent.yaml", LayerKind::workspace);
  for (const bool trusted : {false, true}) {
    const MergedConfig m = merge_layers({base, ws_on}, MergeOptions{trusted, "echo /ws >> trusted"});
    CHECK_FALSE(validate(m, "/h").learn);
    REQUIRE(m.warnings.size() == 1);
    CHECK(m.warnings[0].find("ignoring learn: true from /ws/.cagent.yaml") != std::string::npos);
  }
  // Turning it off asks for more protection: no trust needed, nothing said;
  // the command line still decides last.
  const ConfigLayer ws_off = layer("learn: false\n", "/ws/.cagent.yaml", LayerKind::workspace);
  const MergedConfig off = merge_layers({global_on, ws_off}, MergeOptions{false, "hint"});
  CHECK_FALSE(validate(off, "/h").learn);
  CHECK(off.warnings.empty());
  CHECK(validate(merge_layers({global_on, ws_off, flags}, MergeOptions{false, "hint"}), "/h").learn);
  CHECK(error_of([] { layer("learn: yes please\n", "/g.yaml", LayerKind::base); }) ==
        "/g.yaml:1:8: 'learn' must be true or false");
  // The session policy carries it; --print-config says where it came from.
  Config c;
  c.domains = {"a.example"};
  CHECK(render_policy_toml(c).find("learn = false") != std::string::npos);
  c.learn = true;
  CHECK(render_policy_toml(c).find("learn = true") != std::string::npos);
  CHECK(render_config(merge_layers({global_on}, MergeOptions{})).find("learn: true  # /g.yaml:2") !=
        std::string::npos);
}

TEST_CASE("ask mode: off by default, from the global config or the command line only, never a workspace file") {
  const ConfigLayer base = layer("domains: [a.example]\n", "/g.yaml", LayerKind::base);
  const Config plain = validate(merge_layers({base}, MergeOptions{true, ""}), "/h");
  CHECK_FALSE(plain.ask);
  CHECK(plain.ask_timeout == 10);
  const ConfigLayer global_on =
      layer("domains: [a.example]\nask: true\nask_timeout: 3\n", "/g.yaml", LayerKind::base);
  const Config global = validate(merge_layers({global_on}, MergeOptions{false, "hint"}), "/h");
  CHECK(global.ask);
  CHECK(global.ask_timeout == 3);
  // The flags: --ask and --ask-timeout, positions of the command line.
  const CliOptions cli = parse_cli({"--ask", "--ask-timeout", "7"});
  const Config flagged = validate(merge_layers({base, cli.flags}, MergeOptions{false, "hint"}), "/h");
  CHECK(flagged.ask);
  CHECK(flagged.ask_timeout == 7);
  // A workspace file sets neither, trusted or not, whatever the value, and
  // each key it tried is said once.
  const ConfigLayer ws = layer("ask: true\nask_timeout: 60\n", "/ws/.cagent.yaml", LayerKind::workspace);
  const ConfigLayer ws_off = layer("ask: false\n", "/ws/.cagent.yaml", LayerKind::workspace);
  for (const bool trusted : {false, true}) {
    const MergedConfig m = merge_layers({base, ws}, MergeOptions{trusted, "echo /ws >> trusted"});
    const Config c = validate(m, "/h");
    CHECK_FALSE(c.ask);
    CHECK(c.ask_timeout == 10);
    REQUIRE(m.warnings.size() == 2);
    CHECK(m.warnings[0].find("ignoring ask: true from /ws/.cagent.yaml") == 0);
    CHECK(m.warnings[1].find("ignoring ask_timeout: 60 from /ws/.cagent.yaml") == 0);
    const MergedConfig off = merge_layers({global_on, ws_off}, MergeOptions{trusted, "hint"});
    CHECK(validate(off, "/h").ask);  // the global config's stands
    REQUIRE(off.warnings.size() == 1);
    CHECK(off.warnings[0].find("ignoring ask: false") == 0);
  }
  // Bad values: one line naming where.
  CHECK(error_of([] { layer("ask: maybe\n", "/g.yaml", LayerKind::base); }) == "/g.yaml:1:6: 'ask' must be true or false");
  const auto timeout_error = [&](const std::string& value) {
    return error_of([&] {
      (void)validate(merge_layers({layer("domains: [a.example]\nask_timeout: " + value + "\n", "/g.yaml",
                                         LayerKind::base)},
                                  MergeOptions{}),
                     "/h");
    });
  };
  for (const char* bad : {"0", "61", "-1", "1.5", "ten", "007"}) {
    CAPTURE(bad);
    CHECK(timeout_error(bad) == "/g.yaml:2:14: 'ask_timeout' must be a whole number of seconds from 1 to 60");
  }
  CHECK(timeout_error("[1]").find("/g.yaml:2:14: 'ask_timeout' must be") == 0);
  CHECK(timeout_error("60") == "(no error)");
  CHECK(error_of([&] {
          (void)validate(merge_layers({base, parse_cli({"--ask-timeout=90"}).flags}, MergeOptions{}), "/h");
        }) == "command line:1: 'ask_timeout' must be a whole number of seconds from 1 to 60");
  // The session policy carries both; --print-config says where they came from.
  const std::string toml = render_policy_toml(global);
  const std::size_t ask_at = toml.find("[ask]");
  REQUIRE(ask_at != std::string::npos);
  const std::string ask_table = toml.substr(ask_at, toml.find("\n[", ask_at + 1) - ask_at);
  CHECK(ask_table.find("enabled = true") != std::string::npos);
  CHECK(ask_table.find("timeout = 3") != std::string::npos);
  CHECK(session_policy(plain).ask_enabled == false);
  CHECK(session_policy(global).ask_timeout == 3);
  const std::string shown = render_config(merge_layers({global_on}, MergeOptions{}));
  CHECK(shown.find("ask: true  # /g.yaml:2") != std::string::npos);
  CHECK(shown.find("ask_timeout: 3  # /g.yaml:3") != std::string::npos);
  CHECK(render_config(merge_layers({base}, MergeOptions{})).find("ask_timeout: 10  # default") != std::string::npos);
}

TEST_CASE("image_packages: Debian names only, sorted: an untrusted workspace cannot add any") {
  const ConfigLayer base = layer("domains: [a.example]\nimage_packages: [rustc, cargo, golang-go, cargo]\n",
                                 "/g.yaml", LayerKind::base);
  CHECK(values(base.image_packages) == std::vector<std::string>{"rustc", "cargo", "golang-go", "cargo"});
  // Sorted and deduplicated: one set of packages is one image whatever the order.
  CHECK(validate(merge_layers({base}, MergeOptions{}), "/h").image_packages ==
        std::vector<std::string>{"cargo", "golang-go", "rustc"});
  // Maintainer scripts run as root in the build: a cloned repository's list is dropped, with a warning.
  const ConfigLayer ws = layer("image_packages: [bc]\n", "/ws/.cagent.yaml", LayerKind::workspace);
  const MergedConfig untrusted = merge_layers({base, ws}, MergeOptions{false, "echo /ws >> trusted"});
  CHECK(validate(untrusted, "/h").image_packages == std::vector<std::string>{"cargo", "golang-go", "rustc"});
  REQUIRE(untrusted.warnings.size() == 1);
  CHECK(untrusted.warnings[0].find("image_packages") != std::string::npos);
  CHECK(validate(merge_layers({base, ws}, MergeOptions{true, ""}), "/h").image_packages ==
        std::vector<std::string>{"bc", "cargo", "golang-go", "rustc"});
  // Bad names fail at validation (before any build), naming file:line:column.
  const auto bad = [](const std::string& name) {
    return error_of([&] {
      (void)validate(merge_layers({layer("domains: [a.example]\nimage_packages: ['" + name + "']\n", "/g.yaml",
                                         LayerKind::base)},
                                  MergeOptions{}),
                     "/h");
    });
  };
  CHECK(bad("--allow-unauthenticated").find("/g.yaml:2:18: bad image_packages entry") == 0);
  CHECK(bad("-oAPT::x=1").find("starts with a lowercase letter") != std::string::npos);
  CHECK(bad("Golang").find("lowercase") != std::string::npos);
  CHECK(bad("bc=1.07").find("no version") != std::string::npos);
  CHECK(bad("bc:amd64").find("no version, architecture") != std::string::npos);
  CHECK(bad("rustc cargo").find("one package per entry") != std::string::npos);
  CHECK(bad("bc;rm").find("invalid character ';'") != std::string::npos);
  CHECK(bad("x").find("at least two") != std::string::npos);
  CHECK(bad("").find("at least two") != std::string::npos);
  for (const char* ok : {"g++", "libstdc++-12-dev", "python3.11", "0ad", "postgresql-client"}) {
    CHECK_NOTHROW(check_package_name(ok));
  }
  CHECK(render_config(merge_layers({base}, MergeOptions{})).find("- rustc  # /g.yaml:2:") != std::string::npos);
}
