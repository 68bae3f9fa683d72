#pragma once
// Image management: where the image context is, what goes into it, its
// content hash, and build-when-missing/rebuild-when-changed.
//
//   context root ──context_files()──▶ file list (.dockerignore applied)
//                ──context_hash()───▶ sha256 over files + build args + CA bundle
//   docker image inspect label cagent.context-hash == hash ?  done
//                : copy the context to a private build dir, write
//                  image/build-ca/extra-ca.pem, docker build (log to
//                  ~/.cagent/logs/), remove the copy.
//
// With a user Dockerfile (~/.cagent/Dockerfile) the context is built as
// <image>-base (base_tag()) and the user's file as a second build on top
// (build arg CAGENT_BASE_IMAGE, an empty build context), labelled with
// user_layer_hash(): adding, editing or removing the file rebuilds through
// the same label comparison, and the base stays cached for the next change.
//
// The context is copied rather than built in place so the CA bundle never
// lands in the user's checkout (or a read-only installed tree), and so the
// hash covers exactly the bytes docker receives.

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "launcher/host/docker_argv.hpp"
#include "launcher/host/process.hpp"

namespace cagent::launcher::host {

// A docker failure: cagent exits 125 with this one-line message.
struct DockerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kBuildCaPath = "image/build-ca/extra-ca.pem";
inline constexpr const char* kDefaultBase = "debian:bookworm-slim";
inline constexpr const char* kDefaultNpmPackages = "@anthropic-ai/claude-code @openai/codex";

// Where the image context is:
//  1. `chosen` ($CAGENT_CONTEXT, read by main) when set and not empty;
//  2. build tree: <dir of the executable>/cagent-source-root exists (a marker
//     CMake writes next to bin/cagent) and names a directory with
//     image/Dockerfile;
//  3. installed: <exe>/../share/cagent/context (relocated prefix), then the
//     configured ${CAGENT_DATA_DIR}/context.
// Returns nullopt when none has image/Dockerfile.
std::optional<std::filesystem::path> find_image_context(const std::filesystem::path& executable,
                                                       const std::optional<std::filesystem::path>& chosen);

// .dockerignore semantics (the subset docker implements): patterns relative
// to the context root, '*' '?' '[..]' within a segment, '**' across
// segments, a match on a directory covers everything below, '!' re-includes,
// the last matching line wins.
class DockerIgnore {
 public:
  static DockerIgnore parse(std::string_view text);
  bool excluded(std::string_view relative) const;
  bool has_exceptions() const { return has_exceptions_; }

 private:
  struct Rule {
    std::vector<std::string> segments;
    bool exception = false;
  };
  std::vector<Rule> rules_;
  bool has_exceptions_ = false;
};

// Relative paths (sorted) of the files docker would receive, excluding
// image/build-ca/ (cagent writes that itself).
std::vector<std::string> context_files(const std::filesystem::path& root);

using BuildArgs = std::vector<std::pair<std::string, std::string>>;

// BASE and AGENT_NPM_PACKAGES: `base` ($CAGENT_BASE_IMAGE) unless unset or
// empty, `npm` ($CAGENT_NPM_PACKAGES) unless unset — an empty one means no
// agent CLIs: a quick build. main reads the variables.
BuildArgs default_build_args(const std::optional<std::string>& base, const std::optional<std::string>& npm);

// Adds EXTRA_PACKAGES (the config's image_packages, already validated and
// sorted) when there are any: without them the default image's build args,
// and so its hash, stay what they were.
BuildArgs with_extra_packages(BuildArgs args, const std::vector<std::string>& packages);

// Adds NESTED_DOCKER=1: the variant with a Docker engine, built
// only for an engine that has sysbox-runc. Being a build arg, it is part of
// the context hash, so the variant has its own ctx-* tag and an engine
// without sysbox keeps exactly the default image (same args, same hash).
BuildArgs with_nested_docker(BuildArgs args);

std::string context_hash(const std::filesystem::path& root, const std::vector<std::string>& files,
                         const BuildArgs& args, std::string_view ca_pem);

// Copies `files` from root to dest (created) and writes the CA bundle (maybe
// empty) to dest/image/build-ca/extra-ca.pem.
void copy_context(const std::filesystem::path& root, const std::vector<std::string>& files,
                  const std::filesystem::path& dest, std::string_view ca_pem);

struct ImageRequest {
  std::string image;
  std::optional<std::filesystem::path> context;  // nullopt: cannot build
  BuildArgs build_args;
  std::string ca_pem;
  std::filesystem::path work_dir;  // for the context copy (private, same fs as logs)
  std::filesystem::path log_dir;   // build logs
  bool check_for_update = true;    // false with --no-update: use what exists
  // ~/.cagent/Dockerfile's text when the file exists. Only from the user's
  // own cagent home, never from a workspace: its RUN steps run as root in
  // the build and its result is every later cage.
  std::optional<std::string> user_dockerfile;
  std::string user_dockerfile_origin = "~/.cagent/Dockerfile";  // for errors
  // Called once an image is to be built, before anything is said or done
  // about it (cagent finishes its workspace scan there; see session.hpp).
  std::function<void()> before_build;
};

// Checks, before any build, that the user Dockerfile's final stage is built
// on cagent's image: its last FROM names ${CAGENT_BASE_IMAGE} (or
// $CAGENT_BASE_IMAGE). Anything else would drop cage-init and the hardening,
// or (FROM the image's own tag) stack every edit on the previous result.
// Throws DockerError naming origin:line.
void check_user_dockerfile(std::string_view text, const std::string& origin);

// The tag of the context's image when a user Dockerfile is built on top:
// "cagent:latest" -> "cagent:latest-base", "cagent" -> "cagent:latest-base".
std::string base_tag(const std::string& image);

// Every image cagent builds is also tagged <repository>:ctx-<first 16 hex
// of its label>, so each distinct set (packages, CA, user layer, sources)
// keeps its own image: switching back to a set retags it instead of
// rebuilding. "cagent:latest" -> "cagent:ctx-0123456789abcdef".
std::string set_tag(const std::string& image, std::string_view hash);

// How many ctx-* images of one repository are kept (newest first); older
// ones are untagged (and removed when nothing else uses them).
inline constexpr std::size_t kKeptImageSets = 3;

// The throwaway stages (npm of image/Dockerfile, the builder of
// image/builder.Dockerfile), each ending in LABEL cagent.stage=<name>. Docker's classic builder leaves every stage's result
// as an untagged ("dangling") image: it is the cache of the next build, so
// removing it would make every rebuild re-run npm or the compiler's
// packages. cagent builds each of them first (--target) under its own tag,
// <repository>:stage-<name> (stage_tag()), so the current ones are named,
// and after a build removes the untagged ones carrying the label: results
// a rebuild replaced. `docker images` then shows only cagent's tags.
// cagent builds the two side by side: npm waits on the network, the builder
// (image/builder.Dockerfile, which needs only the base image) on the CPUs.
inline constexpr std::string_view kThrowawayStages[] = {"npm", "builder"};
inline constexpr const char* kStageLabel = "cagent.stage";

// "cagent:latest", "npm" -> "cagent:stage-npm".
std::string stage_tag(const std::string& image, std::string_view stage);

// The builder's result under one build's own tag, removed when that build
// ends: "cagent:latest", "1a2b3c4d" -> "cagent:stage-builder-1a2b3c4d".
std::string builder_tag(const std::string& image, std::string_view build);

// The build of one throwaway stage, tagged stage_tag(image, stage): npm as
// `--target npm` of image/Dockerfile; the builder as image/builder.Dockerfile,
// which takes only BASE of the build args (the others would be reported as
// unused), also tagged builder_tag(image, build).
BuildSpec stage_build_spec(const std::string& image, std::string_view stage, const std::filesystem::path& context,
                           const std::string& hash, const BuildArgs& args, std::string_view build);

// The build of the context's image `context_image` (the final one, or the
// base of a user layer): image/Dockerfile, labelled `hash`, with
// BUILDER_IMAGE = `builder` (the builder's image under a tag of this build's
// own, builder_tag(), so that another cagent retagging stage-builder
// meanwhile cannot put its binaries under this hash; a tag, not the image
// ID: BuildKit takes FROM sha256:… for a repository name).
BuildSpec context_build_spec(const std::string& context_image, const std::filesystem::path& context,
                             const std::string& hash, const BuildArgs& args, const std::string& builder);

// The other tags cagent gave `image`'s repository: the kept ctx-* sets, the
// -base of a user layer and the stage-* caches (for --reset i). Empty when
// docker cannot list.
std::vector<std::string> kept_image_tags(ProcessRunner& runner, const std::string& image);

// The second build: `dir`/Dockerfile (the user's text), `dir`/context (empty),
// on `base` (build arg CAGENT_BASE_IMAGE), tagged `image`, labelled `label`.
std::vector<std::string> render_user_build_argv(const std::string& image, const std::filesystem::path& dir,
                                                const std::string& label, const std::string& base);

// The label of an image built from the user Dockerfile on a base whose
// context hash is `base_hash`: changes with either.
std::string user_layer_hash(std::string_view base_hash, std::string_view dockerfile);

// Reads the image's cagent.context-hash label; nullopt when the image is missing.
std::optional<std::string> inspect_image_hash(ProcessRunner& runner, const std::string& image);

// Ensures the image exists and, unless !check_for_update, matches the
// context. Prints one progress line to `err` when it builds. Throws
// DockerError on failure (with the log path and its last lines).
void ensure_image(ProcessRunner& runner, const ImageRequest& request, std::ostream& err);

}  // namespace cagent::launcher::host
