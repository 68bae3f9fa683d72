#include "launcher/host/reset.hpp"

#include <ostream>
#include <sstream>
#include <system_error>

#include "launcher/host/docker_argv.hpp"
#include "launcher/host/image.hpp"

namespace cagent::launcher::host {

ResetPlan parse_reset(const std::string& letters) {
  ResetPlan p;
  for (char c : letters) {
    if (c == 'c') p.containers = true;
    if (c == 'i') p.image = true;
    if (c == 'v') p.volume = true;
    if (c == 'd') p.home = true;
  }
  return p;
}

std::string describe_reset(const ResetPlan& plan, const std::string& image,
                           const std::filesystem::path& cagent_home, const std::string& home_volume_prefix) {
  std::string s;
  if (plan.containers) s += "  - every container labelled " + std::string(kSessionLabel) + " (running sessions stop)\n";
  if (plan.image) s += "  - the image " + image + " (and its kept configurations, " + set_tag(image, "*") + ")\n";
  if (plan.volume) {
    s += "  - the agent's home volumes (" + home_volume_prefix + "-*, one per workspace directory, and " +
         home_volume_prefix + "): logins, history\n";
  }
  if (plan.home) s += "  - " + cagent_home.string() + " (config, logs, trusted workspaces, approved workspace configs, kept directory listings)\n";
  return s;
}

std::vector<std::vector<std::string>> reset_docker_commands(const ResetPlan& plan,
                                                            const std::string& image,
                                                            const std::vector<std::string>& ids,
                                                            const std::string& home_volume_prefix,
                                                            const std::vector<std::string>& volumes) {
  std::vector<std::vector<std::string>> cmds;
  if (plan.containers && !ids.empty()) {
    std::vector<std::string> rm = {"docker", "rm", "-f"};
    rm.insert(rm.end(), ids.begin(), ids.end());
    cmds.push_back(rm);
  }
  if (plan.image) cmds.push_back({"docker", "image", "rm", "-f", image});
  if (plan.volume) {
    std::vector<std::string> rm = {"docker", "volume", "rm", "-f", home_volume_prefix};
    for (const std::string& v : volumes) {
      if (v != home_volume_prefix) rm.push_back(v);
    }
    cmds.push_back(rm);
  }
  return cmds;
}

int run_reset(ProcessRunner& runner, const ResetPlan& plan, const std::string& image,
              const std::filesystem::path& cagent_home, const std::string& home_volume_prefix,
              std::ostream& err) {
  int status = 0;
  std::vector<std::string> ids;
  if (plan.containers) {
    RunOptions capture;
    capture.output = RunOptions::Output::capture;
    const RunResult r = runner.run(
        {"docker", "ps", "-aq", "--filter", std::string("label=") + kSessionLabel}, capture);
    if (r.status != 0) {
      err << "cagent: cannot list containers (docker ps exit " << r.status << ")\n";
      status = 125;
    }
    std::istringstream in(r.output);
    for (std::string id; in >> id;) ids.push_back(id);
  }
  std::vector<std::string> volumes;
  if (plan.volume) {
    RunOptions capture;
    capture.output = RunOptions::Output::capture;
    const RunResult r = runner.run({"docker", "volume", "ls", "-q", "--filter",
                                    std::string("label=") + kHomeLabel + "=" + home_volume_prefix},
                                   capture);
    if (r.status != 0) {
      err << "cagent: cannot list the home volumes (docker volume ls exit " << r.status << ")\n";
      status = 125;
    }
    std::istringstream in(r.output);
    for (std::string name; in >> name;) volumes.push_back(name);
  }
  RunOptions quiet;
  quiet.output = RunOptions::Output::discard;
  quiet.merge_stderr = true;
  for (const auto& cmd : reset_docker_commands(plan, image, ids, home_volume_prefix, volumes)) {
    const RunResult r = runner.run(cmd, quiet);
    // "image rm -f" and "volume rm -f" of something absent still exit 0 on
    // current docker; older ones say "No such"; either way nothing is left.
    if (r.status != 0) {
      err << "cagent: '" << cmd[1] << " " << cmd[2] << "' failed (exit " << r.status << ")\n";
      status = 125;
    }
  }
  if (plan.image) {
    // After the containers are gone, so none still holds an image.
    // The image's other tags (one per kept configuration, the base of a
    // user layer): without them "image rm" would only untag it.
    for (const std::string& tag : kept_image_tags(runner, image)) runner.run({"docker", "image", "rm", "-f", tag}, quiet);
  }
  if (plan.home) {
    std::error_code ec;
    std::filesystem::remove_all(cagent_home, ec);
    if (ec) {
      err << "cagent: cannot remove " << cagent_home.string() << ": " << ec.message() << "\n";
      status = 1;
    }
  }
  return status;
}

}  // namespace cagent::launcher::host
