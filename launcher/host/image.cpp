#include "launcher/host/image.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <future>
#include <ostream>
#include <set>
#include <span>
#include <sstream>
#include <system_error>

#include "cagent_host/build_info.hpp"
#include "launcher/host/docker_argv.hpp"
#include "launcher/host/paths.hpp"
#include "launcher/host/pattern.hpp"
#include "launcher/host/sha256.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

bool has_dockerfile(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "image" / "Dockerfile", ec);
}

bool glob_segments(const std::vector<std::string>& pat, std::size_t pi,
                   const std::vector<std::string_view>& path, std::size_t si) {
  while (pi < pat.size()) {
    if (pat[pi] == "**") {
      for (std::size_t k = si; k <= path.size(); ++k) {
        if (glob_segments(pat, pi + 1, path, k)) return true;
      }
      return false;
    }
    if (si >= path.size()) return false;
    const std::string subject(path[si]);
    if (::fnmatch(pat[pi].c_str(), subject.c_str(), 0) != 0) return false;
    ++pi;
    ++si;
  }
  return si == path.size();
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string tail_lines(const fs::path& file, std::size_t lines) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const std::exception&) {
    return {};
  }
  std::size_t pos = text.size();
  std::size_t count = 0;
  while (pos > 0 && count <= lines) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++count;
  }
  return text.substr(pos);
}

// One field of a hashed description, length-prefixed, so no two different
// inputs serialize alike.
void hash_field(Sha256& h, std::string_view tag, std::string_view value) {
  h.update(tag);
  h.update(std::to_string(value.size()));
  h.update(":");
  h.update(value);
}

}  // namespace

std::optional<fs::path> find_image_context(const fs::path& executable, const std::optional<fs::path>& chosen) {
  if (chosen && !chosen->empty()) {
    if (has_dockerfile(*chosen)) return fs::absolute(*chosen);
    return std::nullopt;
  }
  const fs::path bin_dir = executable.parent_path();
  std::error_code ec;
  if (fs::is_regular_file(bin_dir / "cagent-source-root", ec)) {
    const fs::path root = trim(read_file(bin_dir / "cagent-source-root"));
    if (has_dockerfile(root)) return root;
  }
  const fs::path relocated = bin_dir.parent_path() / "share" / "cagent" / "context";
  if (has_dockerfile(relocated)) return relocated;
  const fs::path configured = fs::path(build_info::kDataDir) / "context";
  if (has_dockerfile(configured)) return configured;
  return std::nullopt;
}

DockerIgnore DockerIgnore::parse(std::string_view text) {
  DockerIgnore d;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::string p = trim(line);
    if (p.empty() || p.front() == '#') continue;
    Rule r;
    if (p.front() == '!') {
      r.exception = true;
      d.has_exceptions_ = true;
      p = trim(p.substr(1));
    }
    while (p.rfind("./", 0) == 0) p = p.substr(2);
    for (std::string_view seg : split_path(p)) {
      if (seg == ".") continue;
      r.segments.emplace_back(seg);
    }
    if (!r.segments.empty()) d.rules_.push_back(std::move(r));
  }
  return d;
}

bool DockerIgnore::excluded(std::string_view relative) const {
  const std::vector<std::string_view> path = split_path(relative);
  bool out = false;
  for (const Rule& r : rules_) {
    // A rule matching any leading part of the path covers the whole subtree.
    for (std::size_t n = 1; n <= path.size(); ++n) {
      const std::vector<std::string_view> prefix(path.begin(), path.begin() + static_cast<long>(n));
      if (glob_segments(r.segments, 0, prefix, 0)) {
        out = !r.exception;
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> context_files(const fs::path& root) {
  DockerIgnore ignore;
  std::error_code ec;
  if (fs::is_regular_file(root / ".dockerignore", ec)) {
    ignore = DockerIgnore::parse(read_file(root / ".dockerignore"));
  } else {
    // Without a .dockerignore docker would ship build trees and .git; never
    // hash (or copy) those.
    ignore = DockerIgnore::parse(".git\nbuild*\n.cache\n");
  }
  std::vector<std::string> files;
  std::vector<std::pair<fs::path, std::string>> stack = {{root, ""}};
  while (!stack.empty()) {
    auto [dir, rel_dir] = std::move(stack.back());
    stack.pop_back();
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      if (rel == "image/build-ca") continue;  // cagent's own, per build
      const fs::file_status st = it->symlink_status(ec);
      if (ec) break;
      const bool excluded = ignore.excluded(rel);
      if (fs::is_directory(st)) {
        // An excluded directory can only contribute files through '!' rules.
        if (!excluded || ignore.has_exceptions()) stack.emplace_back(it->path(), rel);
        continue;
      }
      if (!excluded && (fs::is_regular_file(st) || fs::is_symlink(st))) files.push_back(rel);
    }
    if (ec) throw std::runtime_error("cannot read image context " + dir.string() + ": " + ec.message());
  }
  std::sort(files.begin(), files.end());
  return files;
}

BuildArgs default_build_args(const std::optional<std::string>& base, const std::optional<std::string>& npm) {
  return {{"BASE", base && !base->empty() ? *base : kDefaultBase},
          {"AGENT_NPM_PACKAGES", npm ? *npm : kDefaultNpmPackages}};
}

BuildArgs with_extra_packages(BuildArgs args, const std::vector<std::string>& packages) {
  if (packages.empty()) return args;
  std::string list;
  for (const std::string& p : packages) list += (list.empty() ? "" : " ") + p;
  args.emplace_back("EXTRA_PACKAGES", std::move(list));
  return args;
}

BuildArgs with_nested_docker(BuildArgs args) {
  args.emplace_back("NESTED_DOCKER", "1");
  return args;
}

std::string context_hash(const fs::path& root, const std::vector<std::string>& files,
                         const BuildArgs& args, std::string_view ca_pem) {
  Sha256 h;
  const auto field = [&h](std::string_view tag, std::string_view value) { hash_field(h, tag, value); };
  field("v", "cagent-context-1");
  for (const std::string& rel : files) {
    const fs::path p = root / rel;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(p, ec);
    field("path", rel);
    if (fs::is_symlink(st)) {
      field("link", fs::read_symlink(p, ec).string());
    } else {
      // The executable bit reaches the image (COPY keeps modes).
      const bool exec = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      field("mode", exec ? "x" : "-");
      field("data", read_file(p));
    }
  }
  for (const auto& [name, value] : args) field("arg", name + "=" + value);
  field("ca", ca_pem);
  return h.hex_digest();
}

void copy_context(const fs::path& root, const std::vector<std::string>& files, const fs::path& dest,
                  std::string_view ca_pem) {
  fs::create_directories(dest);
  for (const std::string& rel : files) {
    const fs::path to = dest / rel;
    fs::create_directories(to.parent_path());
    fs::copy(root / rel, to, fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing);
  }
  // Directories with the source's modes, not with this process's umask: the
  // legacy builder's cache key for a COPY of a directory includes every
  // entry's mode, and a copy unlike the checkout would miss the layers
  // setup.sh prepared from the checkout itself (image/prepare-layers.sh).
  std::set<fs::path> dirs;
  for (const std::string& rel : files) {
    for (fs::path dir = fs::path(rel).parent_path(); !dir.empty(); dir = dir.parent_path()) {
      if (!dirs.insert(dir).second) break;  // its ancestors are in already
    }
  }
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    const fs::file_status st = fs::status(root / dir, ec);
    if (!ec) fs::permissions(dest / dir, st.permissions(), ec);
  }
  fs::create_directories(dest / "image" / "build-ca");
  write_file(dest / kBuildCaPath, ca_pem, 0644);
}

std::optional<std::string> inspect_image_hash(ProcessRunner& runner, const std::string& image) {
  RunOptions opts;
  opts.output = RunOptions::Output::capture;
  opts.discard_stderr = true;  // "No such image" is an answer here, not an error
  const RunResult r = runner.run({"docker", "image", "inspect", "--format",
                                  std::string("{{ index .Config.Labels \"") + kHashLabel + "\" }}",
                                  image},
                                 opts);
  if (r.status != 0) return std::nullopt;
  return trim(std::string_view(r.output).substr(0, r.output.find('\n')));
}

void check_user_dockerfile(std::string_view text, const std::string& origin) {
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  int from_line = 0;
  std::string from_image;
  bool continued = false;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    const bool was_continued = continued;
    continued = !t.empty() && t.back() == '\\';
    if (was_continued || t.empty() || t.front() == '#') continue;
    std::istringstream words(t);
    std::string keyword, image;
    words >> keyword;
    for (char& c : keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (keyword != "FROM") continue;
    // Flags (--platform=...) come before the image.
    while (words >> image && image.rfind("--", 0) == 0) {
    }
    from_line = n;
    from_image = image;
  }
  if (from_line == 0) throw DockerError(origin + ": no FROM line (it must start FROM ${CAGENT_BASE_IMAGE})");
  if (from_image != "${CAGENT_BASE_IMAGE}" && from_image != "$CAGENT_BASE_IMAGE") {
    throw DockerError(origin + ":" + std::to_string(from_line) + ": the final stage must be FROM ${CAGENT_BASE_IMAGE} (with ARG CAGENT_BASE_IMAGE first), not '" +
                      from_image + "': cagent's image carries cage-init, the firewall's setup");
  }
}

std::string base_tag(const std::string& image) {
  // A ':' after the last '/' starts the tag (a registry host may have a port).
  const std::size_t slash = image.rfind('/');
  const std::size_t colon = image.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return tagged ? image + "-base" : image + ":latest-base";
}

namespace {

// "repo:tag" -> "repo" (a ':' before the last '/' is a registry port).
std::string repository_of(const std::string& image) {
  const std::size_t slash = image.rfind('/');
  const std::size_t colon = image.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return tagged ? image.substr(0, colon) : image;
}

}  // namespace

std::string set_tag(const std::string& image, std::string_view hash) {
  return repository_of(image) + ":ctx-" + std::string(hash.substr(0, 16));
}

std::string user_layer_hash(std::string_view base_hash, std::string_view dockerfile) {
  Sha256 h;
  const auto field = [&h](std::string_view tag, std::string_view value) { hash_field(h, tag, value); };
  field("v", "cagent-user-layer-1");
  field("base", base_hash);
  field("dockerfile", dockerfile);
  return h.hex_digest();
}

namespace {

// Removes a private build directory however the build ends.
struct RemoveDir {
  fs::path dir;
  explicit RemoveDir(fs::path d) : dir(std::move(d)) {}
  RemoveDir(const RemoveDir&) = delete;
  RemoveDir& operator=(const RemoveDir&) = delete;
  ~RemoveDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

void run_build(ProcessRunner& runner, const std::vector<std::string>& argv, const fs::path& log) {
  RunOptions opts;
  opts.output = RunOptions::Output::file;
  opts.file = log;
  opts.merge_stderr = true;
  const RunResult r = runner.run(argv, opts);
  if (r.status != 0) {
    throw DockerError("image build failed (exit " + std::to_string(r.status) + "); full log: " +
                      log.string() + "; last lines:" + tail_lines(log, 15));
  }
}

// build-1234.log, "builder" -> build-1234-builder.log: where build_stages
// puts the output of a stage that runs beside the first.
fs::path stage_log(const fs::path& log, std::string_view stage) {
  return log.parent_path() / (log.stem().string() + "-" + std::string(stage) + log.extension().string());
}

// The throwaway stages, all at once, each from the private context copy:
// npm waits on the registry, the builder compiles, and neither needs the
// other. The first stage's output goes to `log`, each further one's to a log
// of its own beside it (two builds' step lines interleaved would be
// unreadable). Every build is waited for before a failure is reported, so
// none outlives this call; the first failure (in stage order) is thrown, and
// a stage that could not get a thread of its own is not started after it.
void build_stages(ProcessRunner& runner, const ImageRequest& request, const fs::path& copy,
                  const std::string& hash, const fs::path& log, std::string_view build) {
  const auto argv_of = [&](std::string_view stage) {
    return render_build_argv(stage_build_spec(request.image, stage, copy, hash, request.build_args, build));
  };
  std::vector<std::future<void>> others;
  for (std::string_view stage : std::span(kThrowawayStages).subspan(1)) {
    auto run = [&runner, argv = argv_of(stage), own = stage_log(log, stage)] { run_build(runner, argv, own); };
    try {
      others.push_back(std::async(std::launch::async, run));
    } catch (const std::system_error&) {
      others.push_back(std::async(std::launch::deferred, run));  // no thread: after the first
    }
  }
  std::exception_ptr first_error;
  try {
    run_build(runner, argv_of(kThrowawayStages[0]), log);
  } catch (...) {
    first_error = std::current_exception();
  }
  for (std::future<void>& other : others) {
    if (first_error && other.wait_for(std::chrono::seconds(0)) == std::future_status::deferred) continue;
    try {
      other.get();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

// Removes one tag however the build ends (docker rmi of a tag that another
// tag still names only untags).
struct RemoveTag {
  ProcessRunner& runner;
  std::string tag;
  RemoveTag(ProcessRunner& r, std::string t) : runner(r), tag(std::move(t)) {}
  RemoveTag(const RemoveTag&) = delete;
  RemoveTag& operator=(const RemoveTag&) = delete;
  ~RemoveTag() {
    RunOptions quiet;
    quiet.output = RunOptions::Output::discard;
    quiet.discard_stderr = true;
    try {
      runner.run({"docker", "image", "rm", tag}, quiet);
    } catch (...) {
      // Best effort: --reset i finds a leftover (kept_image_tags).
    }
  }
};

// Tags (repo:tag) in image's repository, newest first as docker lists
// them; with `label`, only of images that carry it.
std::vector<std::string> repository_tags(ProcessRunner& runner, const std::string& image, std::string_view label) {
  RunOptions capture;
  capture.output = RunOptions::Output::capture;
  capture.discard_stderr = true;
  std::vector<std::string> argv = {"docker", "image", "ls"};
  if (!label.empty()) argv.insert(argv.end(), {"--filter", "label=" + std::string(label)});
  argv.insert(argv.end(), {"--format", "{{.Repository}}:{{.Tag}}", repository_of(image)});
  const RunResult list = runner.run(argv, capture);
  std::vector<std::string> tags;
  if (list.status != 0) return tags;
  std::istringstream in(list.output);
  for (std::string line; std::getline(in, line);) {
    if (std::string tag = trim(line); !tag.empty()) tags.push_back(std::move(tag));
  }
  return tags;
}

// Keeps the kKeptImageSets newest ctx-* tags of the image's repository
// (docker lists newest first) and the one just used; `docker rmi` of a tag
// only untags when another tag still names the image, and fails (ignored)
// while a cage runs on it.
void prune_old_sets(ProcessRunner& runner, const std::string& image, const std::string& keep) {
  std::size_t kept = 0;
  RunOptions quiet;
  quiet.output = RunOptions::Output::discard;
  quiet.discard_stderr = true;
  for (const std::string& tag : repository_tags(runner, image, kHashLabel)) {
    if (tag.find(":ctx-") == std::string::npos) continue;
    if (tag == keep || kept < kKeptImageSets - 1) {
      if (tag != keep) ++kept;
      continue;
    }
    runner.run({"docker", "rmi", tag}, quiet);
  }
}

// Removes the untagged images carrying `label`: with kHashLabel the images
// each rebuild replaced (without this every rebuild would leave another
// ~2 GB behind), with kStageLabel the stage results a rebuild replaced
// (the current ones carry stage-* tags). Removing an image also removes its
// untagged parents that nothing else uses; Docker keeps any that a running
// cage still uses. Best effort: a failure here costs disk space, not
// correctness.
void prune_untagged(ProcessRunner& runner, std::string_view label) {
  RunOptions quiet;
  quiet.output = RunOptions::Output::discard;
  quiet.discard_stderr = true;
  runner.run({"docker", "image", "prune", "--force", "--filter", "label=" + std::string(label)}, quiet);
}

}  // namespace

std::vector<std::string> render_user_build_argv(const std::string& image, const fs::path& dir,
                                                const std::string& label, const std::string& base) {
  return {"docker", "build", "-f", (dir / "Dockerfile").string(), "-t", image, "--label",
          std::string(kHashLabel) + "=" + label, "--force-rm", "--build-arg", "CAGENT_BASE_IMAGE=" + base,
          (dir / "context").string()};
}

std::string stage_tag(const std::string& image, std::string_view stage) {
  return repository_of(image) + ":stage-" + std::string(stage);
}

std::string builder_tag(const std::string& image, std::string_view build) {
  return stage_tag(image, "builder") + "-" + std::string(build);
}

BuildSpec stage_build_spec(const std::string& image, std::string_view stage, const fs::path& context,
                           const std::string& hash, const BuildArgs& args, std::string_view build) {
  BuildSpec spec{stage_tag(image, stage), context, hash, args, std::string(stage)};
  if (stage == "builder") {
    spec.dockerfile = "builder.Dockerfile";
    spec.also_tagged.push_back(builder_tag(image, build));
    std::erase_if(spec.build_args, [](const auto& arg) { return arg.first != "BASE"; });
  }
  return spec;
}

BuildSpec context_build_spec(const std::string& context_image, const fs::path& context, const std::string& hash,
                             const BuildArgs& args, const std::string& builder) {
  BuildSpec spec{context_image, context, hash, args};
  spec.build_args.emplace_back("BUILDER_IMAGE", builder);
  return spec;
}

std::vector<std::string> kept_image_tags(ProcessRunner& runner, const std::string& image) {
  std::vector<std::string> out;
  const std::string base = base_tag(image);
  for (const std::string& tag : repository_tags(runner, image, kHashLabel)) {
    if (tag.find(":ctx-") != std::string::npos || tag == base) out.push_back(tag);
  }
  // Stage images carry kStageLabel, not the hash label.
  for (const std::string& tag : repository_tags(runner, image, kStageLabel)) {
    for (std::string_view stage : kThrowawayStages) {
      if (tag == stage_tag(image, stage)) out.push_back(tag);
    }
    // A build's own builder tag that outlived it (cagent killed mid-build).
    if (tag.starts_with(builder_tag(image, ""))) out.push_back(tag);
  }
  return out;
}

void ensure_image(ProcessRunner& runner, const ImageRequest& request, std::ostream& err) {
  const std::optional<std::string> current = inspect_image_hash(runner, request.image);
  if (current && !request.check_for_update) return;
  if (!request.context) {
    if (current) {
      err << "cagent: image context not found (set CAGENT_CONTEXT); using " << request.image
                << " as it is\n";
      return;
    }
    throw DockerError("image " + request.image +
                      " is missing and no image context (image/Dockerfile) was found to build it; "
                      "set CAGENT_CONTEXT to the cagent source tree");
  }
  const std::vector<std::string> files = context_files(*request.context);
  const std::string hash = context_hash(*request.context, files, request.build_args, request.ca_pem);
  const bool layered = request.user_dockerfile.has_value();
  if (layered) check_user_dockerfile(*request.user_dockerfile, request.user_dockerfile_origin);
  const std::string wanted = layered ? user_layer_hash(hash, *request.user_dockerfile) : hash;
  if (current && *current == wanted) return;

  const std::string wanted_tag = set_tag(request.image, wanted);
  RunOptions quiet;
  quiet.output = RunOptions::Output::discard;
  quiet.discard_stderr = true;
  if (inspect_image_hash(runner, wanted_tag) == wanted) {
    // This set was built before (another workspace's packages, a Dockerfile
    // put back): its image is still here, labelled with the same hash.
    if (runner.run({"docker", "tag", wanted_tag, request.image}, quiet).status == 0) {
      err << "cagent: using the image built earlier for this configuration (" << wanted_tag << ")\n";
      return;
    }
  }

  // The context's image: the final one, or the base of the user's layer.
  const std::string context_image = layered ? base_tag(request.image) : request.image;
  const std::optional<std::string> context_current =
      layered ? inspect_image_hash(runner, context_image) : current;

  if (request.before_build) request.before_build();
  fs::create_directories(request.log_dir);
  const std::string stamp = random_hex(4);
  const fs::path log = request.log_dir / ("build-" + stamp + ".log");
  const bool build_context = !context_current || *context_current != hash;
  err << "cagent: " << (current ? "rebuilding" : "building") << " image " << request.image
      << (current ? " (its sources changed)" : " (first run: a few minutes)")
      << (layered ? " with ~/.cagent/Dockerfile" : "") << "; log: " << log.string();
  if (build_context) err << " (the compile's: " << stage_log(log, "builder").filename().string() << ")";
  err << "\n";
  bool replaced = current.has_value();
  bool built_context = false;
  if (build_context) {
    const fs::path copy = request.work_dir / ("context-" + stamp);
    RemoveDir cleanup{copy};
    copy_context(*request.context, files, copy, request.ca_pem);
    const std::string builder = builder_tag(request.image, stamp);
    RemoveTag remove_builder_tag{runner, builder};
    build_stages(runner, request, copy, hash, log, stamp);
    run_build(runner, render_build_argv(context_build_spec(context_image, copy, hash, request.build_args, builder)),
              log);
    built_context = true;
    replaced = replaced || context_current.has_value();
  }
  if (layered) {
    // An empty context: the user's file cannot COPY anything from the host
    // (not ~/.cagent, where it lives next to trust lists and logs).
    const fs::path dir = request.work_dir / ("user-" + stamp);
    RemoveDir cleanup{dir};
    fs::create_directories(dir / "context");
    write_file(dir / "Dockerfile", *request.user_dockerfile, 0644);
    run_build(runner, render_user_build_argv(request.image, dir, wanted, context_image), log);
  }
  runner.run({"docker", "tag", request.image, wanted_tag}, quiet);
  prune_old_sets(runner, request.image, wanted_tag);
  if (built_context) prune_untagged(runner, kStageLabel);
  if (replaced) prune_untagged(runner, kHashLabel);
}

}  // namespace cagent::launcher::host
