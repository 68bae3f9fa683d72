#pragma once
// Once-a-day "is there a newer cagent?" for a git checkout with an upstream.
// It never changes the checkout: it only says how to update. Bounded to
// about 2 seconds (git fetch is killed after that) and silent on failure, so
// a network problem never blocks or breaks start-up.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "launcher/host/process.hpp"

namespace cagent::launcher::host {

// True when `stamp` is missing or older than a day; touches it when true.
bool update_check_due(const std::filesystem::path& stamp);

// The message to print, or nullopt when up to date / unknown.
std::optional<std::string> check_for_update(ProcessRunner& runner, const std::filesystem::path& repo,
                                            std::chrono::milliseconds budget);

}  // namespace cagent::launcher::host
