#include <doctest/doctest.h>

#include <sstream>

#include <algorithm>
#include <chrono>
#include <thread>
#include <future>
#include <atomic>
#include <map>
#include <set>

#include "launcher/host/image.hpp"
#include "launcher/host/sha256.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
using cagent::launcher::host::test::FakeRunner;
using cagent::launcher::host::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("sha256 known answers") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE(".dockerignore matching table") {
  const DockerIgnore d = DockerIgnore::parse(
      "# comment\n/build*\n.git\ntests/\n**/*.swp\n*.md\n!README.md\n./cache\n");
  struct Case {
    const char* path;
    bool excluded;
  };
  const Case cases[] = {{"build", true},          {"build-host/bin/x", true}, {".git/HEAD", true},
                        {"tests/unit/a.cpp", true}, {"src/a.swp", true},        {"a.md", true},
                        {"README.md", false},       {"docs/x.md", false},       {"cache/f", true},
                        {"image/Dockerfile", false}, {"nft/nft.hpp", false}};
  for (const Case& c : cases) {
    CAPTURE(c.path);
    CHECK(d.excluded(c.path) == c.excluded);
  }
}

TEST_CASE("the shipped .dockerignore keeps documentation out at every depth, and the sources in") {
  const auto root = std::filesystem::path(LAUNCHER_DEFAULT_CONFIG).parent_path();
  const DockerIgnore d = DockerIgnore::parse(read_file(root / ".dockerignore"));
  for (const char* doc : {"README.md", "cmd/README.md", "launcher/host/REFERENCE.md", "bench/RESULTS.md"}) {
    CAPTURE(doc);
    CHECK(d.excluded(doc));
  }
  for (const char* source : {"CMakeLists.txt", "config-default.yaml", "image/Dockerfile", "dnsguard/server.cpp",
                             "launcher/cage/plan.cpp"}) {
    CAPTURE(source);
    CHECK_FALSE(d.excluded(source));
  }
}

TEST_CASE("context files honour .dockerignore and skip image/build-ca") {
  TempDir t;
  t.file("image/Dockerfile", "FROM scratch\n");
  t.file("image/build-ca/extra-ca.pem", "stale");
  t.file("nft/nft.cpp");
  t.file("build-host/bin/cagent");
  t.file(".git/HEAD");
  t.file("tests/x.cpp");
  t.file(".dockerignore", "build*/\n.git\ntests/\n");
  CHECK(context_files(t.path()) ==
        std::vector<std::string>{".dockerignore", "image/Dockerfile", "nft/nft.cpp"});
  fs::remove(t / ".dockerignore");
  // Without a .dockerignore: never the build trees or .git.
  CHECK(context_files(t.path()) ==
        std::vector<std::string>{"image/Dockerfile", "nft/nft.cpp", "tests/x.cpp"});
}

TEST_CASE("context hash changes with files, modes, build args and CA certificates") {
  TempDir t;
  t.file("image/Dockerfile", "FROM scratch\n");
  const auto src = t.file("a.sh", "echo a\n");
  const BuildArgs args = {{"BASE", "debian:bookworm-slim"}, {"AGENT_NPM_PACKAGES", ""}};
  const auto hash = [&](const BuildArgs& a, const std::string& ca) {
    return context_hash(t.path(), context_files(t.path()), a, ca);
  };
  const std::string h0 = hash(args, "");
  CHECK(h0.size() == 64);
  CHECK(hash(args, "") == h0);  // deterministic
  CHECK(hash(args, "-----BEGIN CERTIFICATE-----\n") != h0);
  CHECK(hash({{"BASE", "debian:bookworm-slim"}, {"AGENT_NPM_PACKAGES", "x"}}, "") != h0);
  fs::permissions(src, fs::perms::owner_exec, fs::perm_options::add);
  const std::string h1 = hash(args, "");
  CHECK(h1 != h0);
  write_file(src, "echo b\n", 0755);
  CHECK(hash(args, "") != h1);
}

namespace {

struct ImageFixture {
  TempDir t;
  ImageRequest req;
  FakeRunner runner;
  std::optional<std::string> label;  // what "docker image inspect" reports
  int build_status = 0;
  std::string seen_ca;               // extra-ca.pem in the copied context at build time
  fs::path seen_context;
  std::ostringstream err;            // ensure_image's progress lines

  ImageFixture() {
    t.file("ctx/image/Dockerfile", "FROM scratch\n");
    t.file("ctx/cmd/x.cpp", "int main(){}\n");
    req.image = "cagent:test";
    req.context = t / "ctx";
    req.build_args = {{"BASE", "b"}, {"AGENT_NPM_PACKAGES", ""}};
    req.ca_pem = "CA-PEM";
    req.work_dir = t / "home/build";
    req.log_dir = t / "home/logs";
    runner.respond = [this](const std::vector<std::string>& argv) {
      RunResult r;
      if (argv[1] == "image" && argv[2] == "inspect") {
        r.status = label ? 0 : 1;
        r.output = label.value_or("") + "\n";
      } else if (argv[1] == "build") {
        seen_context = argv.back();
        seen_ca = read_file(seen_context / "image/build-ca/extra-ca.pem");
        r.status = build_status;
      }
      return r;
    };
  }
  std::string expected_hash() const {
    return context_hash(*req.context, context_files(*req.context), req.build_args, req.ca_pem);
  }
  // Builds of the image (not of a throwaway stage).
  std::size_t builds() const {
    std::size_t n = 0;
    for (const auto& c : runner.calls) n += c[1] == "build" && std::find(c.begin(), c.end(), "--target") == c.end();
    return n;
  }
};

}  // namespace

TEST_CASE("ensure_image: builds when missing, with the hash label and the CA in a private copy") {
  ImageFixture f;
  ensure_image(f.runner, f.req, f.err);
  REQUIRE(f.builds() == 1);
  CHECK(f.runner.called_with_prefix({"docker", "build", "-f"}));
  const auto& build = *std::find_if(f.runner.calls.begin(), f.runner.calls.end(), [](const auto& c) {
    return c[1] == "build" && std::find(c.begin(), c.end(), "--target") == c.end();
  });
  CHECK(std::find(build.begin(), build.end(), "cagent.context-hash=" + f.expected_hash()) != build.end());
  CHECK(f.seen_ca == "CA-PEM");
  CHECK(f.seen_context.string().rfind((f.t / "home/build").string(), 0) == 0);
  CHECK_FALSE(fs::exists(f.seen_context));                                // copy removed
  CHECK_FALSE(fs::exists(f.t / "ctx/image/build-ca/extra-ca.pem"));       // checkout untouched
}

TEST_CASE("ensure_image: up to date → no build: changed → rebuild: --no-update → keep") {
  ImageFixture f;
  f.label = f.expected_hash();
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.builds() == 0);
  f.label = "0000";
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.builds() == 1);
  f.req.check_for_update = false;
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.builds() == 1);
  f.label.reset();  // --no-update still builds a missing image
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.builds() == 2);
}

TEST_CASE("ensure_image: a rebuild prunes the image it replaced, a first build prunes nothing") {
  const std::vector<std::string> prune = {"docker", "image", "prune", "--force", "--filter",
                                          "label=cagent.context-hash"};
  ImageFixture first;
  ensure_image(first.runner, first.req, first.err);
  CHECK_FALSE(first.runner.called_with_prefix(prune));

  ImageFixture stale;
  stale.label = "0000";
  ensure_image(stale.runner, stale.req, stale.err);
  REQUIRE(stale.builds() == 1);
  CHECK(stale.runner.calls.back() == prune);  // after the build, never before it

  ImageFixture failed;
  failed.label = "0000";
  failed.build_status = 1;
  CHECK_THROWS_AS(ensure_image(failed.runner, failed.req, failed.err), DockerError);
  CHECK_FALSE(failed.runner.called_with_prefix(prune));  // the old image is all there is
}

TEST_CASE("ensure_image: each throwaway stage is built first under its own tag: replaced stage results pruned") {
  ImageFixture f;
  f.label = "0000";
  ensure_image(f.runner, f.req, f.err);
  std::vector<std::vector<std::string>> builds;
  for (const auto& c : f.runner.calls) {
    if (c[1] == "build") builds.push_back(c);
  }
  REQUIRE(builds.size() == std::size(kThrowawayStages) + 1);
  const std::vector<std::string>& image_build = builds.back();  // the stages come first, in either order
  CHECK(std::find(image_build.begin(), image_build.end(), "--target") == image_build.end());
  for (std::string_view stage : kThrowawayStages) {
    CAPTURE(stage);
    const auto b = std::find_if(builds.begin(), builds.end() - 1, [&](const std::vector<std::string>& c) {
      const auto target = std::find(c.begin(), c.end(), "--target");
      return target != c.end() && *(target + 1) == stage;
    });
    REQUIRE(b != builds.end() - 1);
    CHECK(*(std::find(b->begin(), b->end(), "-t") + 1) == stage_tag("cagent:test", stage));
    CHECK(std::find(b->begin(), b->end(), "--label") == b->end());  // the hash label is the image's
    CHECK(b->back() == image_build.back());                          // the same private copy
  }
  // The builder from its own file, with only BASE; the image names its result.
  const std::string copy = image_build.back();
  const auto builder = std::find_if(builds.begin(), builds.end(), [](const std::vector<std::string>& c) {
    return std::find(c.begin(), c.end(), "builder") != c.end();
  });
  REQUIRE(builder != builds.end());
  CHECK(*(std::find(builder->begin(), builder->end(), "-f") + 1) == copy + "/image/builder.Dockerfile");
  CHECK(std::count(builder->begin(), builder->end(), "--build-arg") == 1);
  CHECK(std::find(builder->begin(), builder->end(), "BASE=b") != builder->end());
  CHECK(*(std::find(image_build.begin(), image_build.end(), "-f") + 1) == copy + "/image/Dockerfile");
  // The builder also under this build's own tag, which the image names and
  // which is removed after.
  const auto tags = [](const std::vector<std::string>& c) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i + 1 < c.size(); ++i) {
      if (c[i] == "-t") out.push_back(c[i + 1]);
    }
    return out;
  };
  const std::vector<std::string> builder_tags = tags(*builder);
  REQUIRE(builder_tags.size() == 2);
  CHECK(builder_tags[0] == "cagent:stage-builder");
  CHECK(builder_tags[1].starts_with("cagent:stage-builder-"));
  CHECK(builder_tags[1].size() == std::string("cagent:stage-builder-").size() + 8);
  CHECK(std::find(image_build.begin(), image_build.end(), "BUILDER_IMAGE=" + builder_tags[1]) != image_build.end());
  const std::vector<std::string> untag = {"docker", "image", "rm", builder_tags[1]};
  const auto untagged = std::find(f.runner.calls.begin(), f.runner.calls.end(), untag);
  REQUIRE(untagged != f.runner.calls.end());
  CHECK(std::find(untagged, f.runner.calls.end(), image_build) == f.runner.calls.end());  // after the image
  CHECK(std::find(image_build.begin(), image_build.end(), "AGENT_NPM_PACKAGES=") != image_build.end());
  CHECK(stage_tag("cagent:test", "npm") == "cagent:stage-npm");
  CHECK(stage_tag("registry:5000/cagent:v1", "builder") == "registry:5000/cagent:stage-builder");
  const std::vector<std::string> prune_stages = {"docker", "image", "prune", "--force", "--filter",
                                                 "label=cagent.stage"};
  const auto at = std::find(f.runner.calls.begin(), f.runner.calls.end(), prune_stages);
  REQUIRE(at != f.runner.calls.end());
  CHECK(std::find(at, f.runner.calls.end(), builds.back()) == f.runner.calls.end());  // after the build

  // No build, no stage pruning.
  ImageFixture current;
  current.label = current.expected_hash();
  ensure_image(current.runner, current.req, current.err);
  CHECK_FALSE(current.runner.called_with_prefix(prune_stages));
}

TEST_CASE("ensure_image: the builder's own tag is removed also when the image build fails") {
  ImageFixture f;
  f.label = "0000";
  std::string private_tag;
  f.runner.respond = [&](const std::vector<std::string>& argv) {
    RunResult r;
    if (argv[1] == "image" && argv[2] == "inspect") {
      r.status = 0;
      r.output = "0000\n";
    } else if (argv[1] == "build") {
      for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
        if (argv[i] == "-t" && argv[i + 1].starts_with("cagent:stage-builder-")) private_tag = argv[i + 1];
      }
      // The stages build, the image does not.
      r.status = std::find(argv.begin(), argv.end(), "--target") == argv.end() ? 1 : 0;
    }
    return r;
  };
  CHECK_THROWS_AS(ensure_image(f.runner, f.req, f.err), DockerError);
  REQUIRE_FALSE(private_tag.empty());
  CHECK(f.runner.called_with_prefix({"docker", "image", "rm", private_tag}));
  // A leftover of a killed build is one of cagent's tags: --reset i removes it.
  ImageFixture listed;
  listed.runner.respond = [](const std::vector<std::string>& argv) {
    RunResult r;
    if (argv[1] == "image" && argv[2] == "ls") {
      r.output = "cagent:stage-builder-0a1b2c3d\ncagent:other-0a1b2c3d\n";
    }
    return r;
  };
  const std::vector<std::string> kept = kept_image_tags(listed.runner, "cagent:latest");
  CHECK(std::count(kept.begin(), kept.end(), "cagent:stage-builder-0a1b2c3d") >= 1);
  CHECK(std::count(kept.begin(), kept.end(), "cagent:other-0a1b2c3d") == 0);
}

TEST_CASE("ensure_image: the npm and builder stages are built side by side, each into its own log") {
  ImageFixture f;
  f.label = "0000";
  f.runner.serialize_respond = false;
  // Each stage's build returns only once the other's has started (or after
  // 10 s): run one after the other, in either order, the first would see no
  // other.
  std::promise<void> builder_started;
  std::promise<void> npm_started;
  std::shared_future<void> builder_up = builder_started.get_future().share();
  std::shared_future<void> npm_up = npm_started.get_future().share();
  std::atomic<bool> npm_saw_builder{false};
  std::atomic<bool> builder_saw_npm{false};
  f.runner.respond = [&](const std::vector<std::string>& argv) {
    const auto has = [&](std::string_view word) { return std::find(argv.begin(), argv.end(), word) != argv.end(); };
    if (argv[1] == "build" && has("builder")) {
      builder_started.set_value();
      builder_saw_npm = npm_up.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    } else if (argv[1] == "build" && has("npm")) {
      npm_started.set_value();
      npm_saw_builder = builder_up.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    }
    return RunResult{};
  };
  ensure_image(f.runner, f.req, f.err);
  CHECK(npm_saw_builder);
  CHECK(builder_saw_npm);
  // The progress line names both logs.
  CHECK(f.err.str().find(".log (the compile's: build-") != std::string::npos);
  CHECK(f.err.str().find("-builder.log)") != std::string::npos);
}

TEST_CASE("ensure_image: a failed stage beside another is reported once both have ended, naming its own log") {
  for (const std::string failing : {"npm", "builder"}) {
    CAPTURE(failing);
    ImageFixture f;
    f.label = "0000";
    f.runner.serialize_respond = false;
    f.runner.respond = [&](const std::vector<std::string>& argv) {
      RunResult r;
      if (argv[1] == "build" && std::find(argv.begin(), argv.end(), "--target") != argv.end()) {
        r.status = std::find(argv.begin(), argv.end(), failing) != argv.end() ? 1 : 0;
      }
      return r;
    };
    try {
      ensure_image(f.runner, f.req, f.err);
      FAIL("no error");
    } catch (const DockerError& e) {
      const std::string what = e.what();
      CHECK((what.find("-builder.log") != std::string::npos) == (failing == "builder"));
    }
    CHECK(f.builds() == 0);  // no image built on a failed stage
  }
}

TEST_CASE("ensure_image: a failed build is a DockerError naming the log") {
  ImageFixture f;
  f.build_status = 1;
  try {
    ensure_image(f.runner, f.req, f.err);
    FAIL("no error");
  } catch (const DockerError& e) {
    CHECK(std::string(e.what()).find("image build failed (exit 1); full log: " +
                                     (f.t / "home/logs").string()) == 0);
  }
}

TEST_CASE("ensure_image: no context and no image is an error: no context with an image is fine") {
  ImageFixture f;
  f.req.context.reset();
  CHECK_THROWS_AS(ensure_image(f.runner, f.req, f.err), DockerError);
  f.label = "x";
  CHECK_NOTHROW(ensure_image(f.runner, f.req, f.err));
}

TEST_CASE("image context lookup: CAGENT_CONTEXT, build-tree marker, relocated install") {
  TempDir t;
  t.file("src/image/Dockerfile", "FROM scratch\n");
  t.file("build/bin/cagent-source-root", (t / "src").string() + "\n");
  t.file("prefix/share/cagent/context/image/Dockerfile", "FROM scratch\n");
  for (const std::optional<fs::path>& unset : {std::optional<fs::path>(), std::optional<fs::path>("")}) {
    CHECK(find_image_context(t / "build/bin/cagent", unset) == t / "src");
    CHECK(find_image_context(t / "prefix/bin/cagent", unset) == t / "prefix/share/cagent/context");
  }
  CHECK(find_image_context("/nowhere/bin/cagent", t / "src") == t / "src");
  // A chosen context without a Dockerfile is no context (no fallback).
  CHECK_FALSE(find_image_context(t / "build/bin/cagent", t / "build"));
}

TEST_CASE("build args: CAGENT_BASE_IMAGE and CAGENT_NPM_PACKAGES as main read them") {
  const auto args = [](std::optional<std::string> base, std::optional<std::string> npm) {
    return default_build_args(base, npm);
  };
  CHECK(args(std::nullopt, std::nullopt) ==
        BuildArgs{{"BASE", kDefaultBase}, {"AGENT_NPM_PACKAGES", kDefaultNpmPackages}});
  CHECK(args("", std::nullopt)[0].second == kDefaultBase);  // empty base: the default
  CHECK(args("debian:trixie", std::nullopt)[0].second == "debian:trixie");
  CHECK(args(std::nullopt, "")[1].second.empty());          // empty npm: no agent CLIs
  CHECK(args(std::nullopt, "a b")[1].second == "a b");
}

TEST_CASE("ensure_image: says on its error stream when it builds or uses an image as it is") {
  ImageFixture f;
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.err.str().find("cagent: building image cagent:test (first run") != std::string::npos);
  ImageFixture g;
  g.req.context.reset();
  g.label = "x";
  ensure_image(g.runner, g.req, g.err);
  CHECK(g.err.str().find("image context not found") != std::string::npos);
}

TEST_CASE("build args: image_packages become EXTRA_PACKAGES only when there are any") {
  const BuildArgs defaults = default_build_args(std::nullopt, std::nullopt);
  // No packages: the default image's args, and so its hash, are unchanged.
  CHECK(with_extra_packages(defaults, {}) == defaults);
  const BuildArgs extra = with_extra_packages(defaults, {"cargo", "golang-go", "rustc"});
  REQUIRE(extra.size() == defaults.size() + 1);
  CHECK(extra.back() == std::pair<std::string, std::string>{"EXTRA_PACKAGES", "cargo golang-go rustc"});
  TempDir t;
  t.file("image/Dockerfile", "FROM scratch\n");
  const std::vector<std::string> files = context_files(t.path());
  // A different set is a different image.
  CHECK(context_hash(t.path(), files, extra, "") != context_hash(t.path(), files, defaults, ""));
  CHECK(context_hash(t.path(), files, extra, "") !=
        context_hash(t.path(), files, with_extra_packages(defaults, {"cargo"}), ""));
}

namespace {

// Images by tag, each with its label; builds recorded with their -t and label.
struct LayeredFixture {
  TempDir t;
  FakeRunner runner;
  ImageRequest req;
  std::ostringstream err;
  std::map<std::string, std::string> labels;
  std::vector<std::pair<std::string, std::string>> built;  // tag, label
  LayeredFixture() {
    t.file("ctx/image/Dockerfile", "FROM scratch\n");
    req.image = "cagent:test";
    req.context = t / "ctx";
    req.build_args = {{"BASE", "b"}, {"AGENT_NPM_PACKAGES", ""}};
    req.work_dir = t / "home/build";
    req.log_dir = t / "home/logs";
    runner.respond = [this](const std::vector<std::string>& argv) {
      RunResult r;
      if (argv[1] == "image" && argv[2] == "inspect") {
        const auto it = labels.find(argv.back());
        r.status = it == labels.end() ? 1 : 0;
        if (it != labels.end()) r.output = it->second + "\n";
      } else if (argv[1] == "build" && std::find(argv.begin(), argv.end(), "--target") == argv.end()) {
        const std::string tag = *(std::find(argv.begin(), argv.end(), "-t") + 1);
        std::string label = *(std::find(argv.begin(), argv.end(), "--label") + 1);
        label = label.substr(label.find('=') + 1);
        labels[tag] = label;
        built.emplace_back(tag, label);
        // The user's build: a private, empty context and the base by build arg.
        if (tag == req.image && req.user_dockerfile) {
          CHECK(std::find(argv.begin(), argv.end(), "CAGENT_BASE_IMAGE=cagent:test-base") != argv.end());
          CHECK(fs::is_empty(argv.back()));
          CHECK(read_file(*(std::find(argv.begin(), argv.end(), "-f") + 1)) == *req.user_dockerfile);
        }
      }
      return r;
    };
  }
  std::string context_hash_now() const {
    return context_hash(*req.context, context_files(*req.context), req.build_args, req.ca_pem);
  }
};

}  // namespace

TEST_CASE("base_tag: the context's image when a user Dockerfile is layered on it") {
  CHECK(base_tag("cagent:latest") == "cagent:latest-base");
  CHECK(base_tag("cagent") == "cagent:latest-base");
  CHECK(base_tag("registry:5000/team/cagent") == "registry:5000/team/cagent:latest-base");
  CHECK(base_tag("registry:5000/cagent:v1") == "registry:5000/cagent:v1-base");
}

TEST_CASE("ensure_image: a user Dockerfile is a second build: editing or removing it rebuilds") {
  LayeredFixture f;
  f.req.user_dockerfile = "ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nRUN true\n";
  ensure_image(f.runner, f.req, f.err);
  const std::string base = f.context_hash_now();
  const std::string layered = user_layer_hash(base, *f.req.user_dockerfile);
  REQUIRE(f.built.size() == 2);
  CHECK(f.built[0] == std::pair<std::string, std::string>{"cagent:test-base", base});
  CHECK(f.built[1] == std::pair<std::string, std::string>{"cagent:test", layered});
  CHECK(f.err.str().find("with ~/.cagent/Dockerfile") != std::string::npos);
  // Unchanged: nothing is built.
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.built.size() == 2);
  // Edited: only the user's layer, on the cached base.
  f.req.user_dockerfile = "ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nRUN echo 2\n";
  ensure_image(f.runner, f.req, f.err);
  REQUIRE(f.built.size() == 3);
  CHECK(f.built[2].first == "cagent:test");
  CHECK(f.built[2].second == user_layer_hash(base, *f.req.user_dockerfile));
  CHECK(f.runner.calls.back()[2] == "prune");
  // Removed: the context's image again, under the final tag.
  f.req.user_dockerfile.reset();
  ensure_image(f.runner, f.req, f.err);
  REQUIRE(f.built.size() == 4);
  CHECK(f.built[3] == std::pair<std::string, std::string>{"cagent:test", base});
  CHECK(user_layer_hash(base, "a") != user_layer_hash(base, "b"));
  CHECK(user_layer_hash(base, "a") != user_layer_hash(std::string(64, '0'), "a"));
}

TEST_CASE("ensure_image: each configuration keeps its image under a ctx-<hash> tag: switching back retags") {
  CHECK(set_tag("cagent:latest", "0123456789abcdef0123") == "cagent:ctx-0123456789abcdef");
  CHECK(set_tag("registry:5000/cagent", "0123456789abcdef") == "registry:5000/cagent:ctx-0123456789abcdef");
  LayeredFixture f;
  ensure_image(f.runner, f.req, f.err);
  const std::string plain = f.context_hash_now();
  CHECK(f.runner.called_with_prefix({"docker", "tag", "cagent:test", set_tag("cagent:test", plain)}));
  // Another set (packages): built, tagged by its own hash.
  const BuildArgs defaults = f.req.build_args;
  f.req.build_args = with_extra_packages(defaults, {"bc"});
  f.labels[set_tag("cagent:test", plain)] = plain;  // what the tag above did
  ensure_image(f.runner, f.req, f.err);
  REQUIRE(f.built.size() == 2);
  // Back to the first set: no build, the kept image is retagged.
  f.req.build_args = defaults;
  f.runner.calls.clear();
  ensure_image(f.runner, f.req, f.err);
  CHECK(f.built.size() == 2);
  CHECK(f.runner.called_with_prefix({"docker", "tag", set_tag("cagent:test", plain), "cagent:test"}));
  CHECK(f.err.str().find("using the image built earlier") != std::string::npos);
}

TEST_CASE("ensure_image: only the newest ctx-* sets are kept") {
  LayeredFixture f;
  const std::string hash = f.context_hash_now();
  const std::string mine = set_tag("cagent:test", hash);
  auto respond = f.runner.respond;
  f.runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv.size() > 2 && argv[1] == "image" && argv[2] == "ls") {
      // Newest first, as docker lists them; the one just built is first.
      return RunResult{0, "cagent:test\n" + mine + "\ncagent:ctx-a\ncagent:ctx-b\ncagent:ctx-c\ncagent:ctx-d\n", false};
    }
    return respond(argv);
  };
  ensure_image(f.runner, f.req, f.err);
  CHECK_FALSE(f.runner.called_with_prefix({"docker", "rmi", mine}));
  CHECK_FALSE(f.runner.called_with_prefix({"docker", "rmi", "cagent:ctx-a"}));
  CHECK_FALSE(f.runner.called_with_prefix({"docker", "rmi", "cagent:ctx-b"}));
  CHECK(f.runner.called_with_prefix({"docker", "rmi", "cagent:ctx-c"}));
  CHECK(f.runner.called_with_prefix({"docker", "rmi", "cagent:ctx-d"}));
  CHECK_FALSE(f.runner.called_with_prefix({"docker", "rmi", "cagent:test"}));
}

TEST_CASE("kept_image_tags: the ctx-* sets, the -base and the stage-* caches of the image's repository, for --reset i") {
  FakeRunner runner;
  runner.respond = [](const std::vector<std::string>& argv) {
    RunResult r;
    if (argv[1] == "image" && argv[2] == "ls" && argv.back() == "cagent") {
      if (argv[4] == "label=cagent.stage") {
        r.output = "cagent:stage-npm\ncagent:stage-builder\ncagent:stage-other\n";
      } else {
        r.output = "cagent:latest\ncagent:ctx-0123456789abcdef\ncagent:latest-base\ncagent:other\n";
      }
    }
    return r;
  };
  CHECK(kept_image_tags(runner, "cagent:latest") ==
        std::vector<std::string>{"cagent:ctx-0123456789abcdef", "cagent:latest-base", "cagent:stage-npm",
                                 "cagent:stage-builder"});
}

TEST_CASE("check_user_dockerfile: the final stage must be FROM ${CAGENT_BASE_IMAGE}") {
  const auto error = [](const std::string& text) -> std::string {
    try {
      check_user_dockerfile(text, "/h/.cagent/Dockerfile");
    } catch (const DockerError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(error("ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nRUN true\n").empty());
  CHECK(error("# comment\nARG CAGENT_BASE_IMAGE\nfrom $CAGENT_BASE_IMAGE AS final\n").empty());
  // A builder stage from elsewhere is fine; the last stage is what runs.
  CHECK(error("FROM golang:1.22 AS b\nRUN go build\nARG CAGENT_BASE_IMAGE\nFROM --platform=linux/amd64 ${CAGENT_BASE_IMAGE}\n")
            .empty());
  CHECK(error("FROM cagent:latest\nRUN true\n").find("/h/.cagent/Dockerfile:1: the final stage must be FROM") == 0);
  CHECK(error("ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nFROM debian\n").find("Dockerfile:3:") !=
        std::string::npos);
  CHECK(error("RUN true\n").find("no FROM line") != std::string::npos);
  // A continued line is not an instruction.
  CHECK(error("ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nRUN echo \\\n  FROM x\n").empty());
  // Checked before any build.
  LayeredFixture f;
  f.req.user_dockerfile = "FROM cagent:test\n";
  CHECK_THROWS_AS(ensure_image(f.runner, f.req, f.err), DockerError);
  CHECK(f.built.empty());
}

TEST_CASE("render_user_build_argv: the user's file, an empty context, the base by build arg") {
  CHECK(render_user_build_argv("cagent:latest", "/h/build/user-1", "abc", "cagent:latest-base") ==
        std::vector<std::string>{"docker", "build", "-f", "/h/build/user-1/Dockerfile", "-t", "cagent:latest",
                                 "--label", "cagent.context-hash=abc", "--force-rm", "--build-arg",
                                 "CAGENT_BASE_IMAGE=cagent:latest-base", "/h/build/user-1/context"});
}

TEST_CASE("image/Dockerfile: every throwaway stage ends in its cagent.stage label") {
  const fs::path image_dir = fs::path(LAUNCHER_DEFAULT_CONFIG).parent_path() / "image";
  for (std::string_view stage : kThrowawayStages) {
    CAPTURE(stage);
    // In the file cagent builds the stage from.
    std::istringstream in(read_file(image_dir / stage_build_spec("c:l", stage, "/ctx", "h", {}, "b").dockerfile));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    // The stage's lines: from its FROM … AS <stage> to the next FROM.
    const std::string from_suffix = " AS " + std::string(stage);
    auto begin = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.starts_with("FROM ") && l.ends_with(from_suffix);
    });
    REQUIRE(begin != lines.end());
    auto end = std::find_if(begin + 1, lines.end(), [](const std::string& l) { return l.starts_with("FROM "); });
    std::string last;
    for (auto it = begin + 1; it != end; ++it) {
      if (!it->empty() && !it->starts_with("#")) last = *it;
    }
    CHECK(last == std::string("LABEL ") + kStageLabel + "=" + std::string(stage));
  }
}

TEST_CASE("image/Dockerfile: the builder is an image named by BUILDER_IMAGE, after every stage a --target builds") {
  const fs::path image_dir = fs::path(LAUNCHER_DEFAULT_CONFIG).parent_path() / "image";
  std::istringstream in(read_file(image_dir / "Dockerfile"));
  std::vector<std::string> froms;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("FROM ")) froms.push_back(line);
  }
  const auto at = [&](std::string_view line) {
    const auto found = std::find(froms.begin(), froms.end(), line);
    REQUIRE_MESSAGE(found != froms.end(), line);
    return found - froms.begin();
  };
  const auto builder = at("FROM ${BUILDER_IMAGE} AS builder");
  // `--target npm` (cagent) and `--target tools` (prepare-layers.sh) build
  // every stage before theirs: none may need the builder's image yet.
  CHECK(at("FROM tools AS npm") < builder);
  CHECK(at("FROM os AS tools") < builder);
  CHECK(at("FROM tools AS runtime") > builder);
  // No stage of the image compiles: the compile is builder.Dockerfile's.
  CHECK(read_file(image_dir / "Dockerfile").find("cmake --build") == std::string::npos);
}

TEST_CASE("image/builder.Dockerfile shares no step with image/Dockerfile, so builds side by side never race for one") {
  // Two builds running the same step on the same parent at once make two
  // layers for it; a later build may then take the other one from the
  // cache and rebuild all that follows (the workbench's packages).
  const fs::path image_dir = fs::path(LAUNCHER_DEFAULT_CONFIG).parent_path() / "image";
  const auto steps = [](const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    std::string step;
    for (std::string line; std::getline(in, line);) {
      if (step.empty() && (line.empty() || line.starts_with("#"))) continue;
      step += line;
      if (!step.empty() && step.back() == '\\') {
        step.pop_back();
        continue;
      }
      // Whitespace as the builder reads it: a run of blanks is one.
      std::istringstream words(step);
      std::string normal;
      for (std::string word; words >> word;) normal += (normal.empty() ? "" : " ") + word;
      if (!normal.starts_with("FROM ") && !normal.starts_with("ARG ")) out.insert(normal);
      step.clear();
    }
    return out;
  };
  const std::set<std::string> builder = steps(read_file(image_dir / "builder.Dockerfile"));
  const std::set<std::string> image = steps(read_file(image_dir / "Dockerfile"));
  REQUIRE(builder.size() >= 5);  // ENV, RUN apt, COPY..., RUN cmake, LABEL: the parse found them
  REQUIRE(image.size() >= 10);
  for (const std::string& step : builder) {
    CAPTURE(step);
    CHECK(image.count(step) == 0);
  }
  // The control: the parse does see a step both would share if it were there.
  CHECK(steps("FROM x\nENV A=1\n").count("ENV A=1") == 1);
  CHECK(steps("FROM x\nRUN a \\\n && b\n").count("RUN a && b") == 1);
  CHECK(steps("FROM x\nRUN  a   &&  b\n").count("RUN a && b") == 1);
}
