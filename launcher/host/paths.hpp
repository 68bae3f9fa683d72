#pragma once
// Small host-environment helpers shared by the pipeline steps: home
// expansion, where ~/.cagent is, random session ids, shell quoting for
// display (never for execution: docker always gets an argv vector).

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

namespace cagent::launcher::host {

// Expands a leading "~/" or "$HOME/" (or the bare "~" / "$HOME").
std::string expand_home(std::string_view text, const std::filesystem::path& home);

// `home_env` ($HOME, "" when unset) when absolute, else the passwd entry;
// throws if neither gives an absolute path.
std::filesystem::path home_directory(std::string_view home_env);

// `cagent_home_env` ($CAGENT_HOME; tests use it) when not empty, else
// <home>/.cagent.
std::filesystem::path cagent_home(const std::filesystem::path& home, std::string_view cagent_home_env);

// Why `workspace` cannot be a workspace, or nullopt. The agent writes the
// whole workspace, so a workspace that is or holds the user's home directory
// hands it the dotfiles that run on the host as the user (shell rc files,
// ~/.ssh, git's global config), and one that is, holds or lies inside
// cagent's own directory hands it the trusted global config and the
// approvals. Pure: all three paths canonical (weakly, for ones not made yet).
std::optional<std::string> forbidden_workspace(const std::filesystem::path& workspace,
                                               const std::filesystem::path& home,
                                               const std::filesystem::path& cagent_home);

// Warnings for a workspace that holds what builds or runs the cage itself:
// the image context (its files go into the next image, whose cage-init holds
// the firewall) and the cagent executable the user runs. Developing cagent
// in a cage is legitimate, so these warn instead of refusing. Pure.
std::vector<std::string> launcher_in_workspace(const std::filesystem::path& workspace,
                                               const std::optional<std::filesystem::path>& image_context,
                                               const std::filesystem::path& executable);

// `bytes` random bytes from getrandom(2) as lowercase hex.
std::string random_hex(std::size_t bytes);

// POSIX-shell quoting of one word, for --dry-run output and messages. A word
// with control characters or invalid UTF-8 (see text.hpp) is rendered in
// bash's $'...' form with \xNN escapes, so the output never carries them raw.
std::string shell_quote(std::string_view word);

// Reads a whole file; throws std::runtime_error naming the path on failure.
std::string read_file(const std::filesystem::path& path);

// Replaces `path` with `content` and `mode` (dnsguard::write_file_atomically,
// without fsync): never half a file, never written through a symlink put at
// the name. Throws std::runtime_error naming the path on failure.
void write_file(const std::filesystem::path& path, std::string_view content, unsigned mode);

}  // namespace cagent::launcher::host
