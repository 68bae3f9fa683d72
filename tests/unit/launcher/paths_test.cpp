// Which directories cagent refuses as a workspace, and which it warns about.
#include "launcher/host/paths.hpp"

#include <doctest/doctest.h>

using namespace cagent::launcher::host;

TEST_CASE("workspace: never the user's home or cagent's own directory, nor anything holding them") {
  const auto refused = [](const char* ws) { return forbidden_workspace(ws, "/home/u", "/home/u/.cagent"); };
  // The home directory itself (cagent run from ~), an ancestor of it, /.
  for (const char* ws : {"/home/u", "/home", "/"}) {
    CAPTURE(ws);
    REQUIRE(refused(ws));
    CHECK(refused(ws)->find("holds your home directory /home/u") != std::string::npos);
  }
  // cagent's directory, or a directory in it (its approvals, say).
  for (const char* ws : {"/home/u/.cagent", "/home/u/.cagent/approvals"}) {
    CAPTURE(ws);
    REQUIRE(refused(ws));
    CHECK(refused(ws)->find("cagent's own directory /home/u/.cagent") != std::string::npos);
  }
  // A CAGENT_HOME elsewhere, held by the workspace.
  CHECK(forbidden_workspace("/srv/p", "/home/u", "/srv/p/state/.cagent"));
  // Controls: projects in the home directory and beside it are fine, and so
  // is a name that merely starts like the home directory's.
  for (const char* ws : {"/home/u/src/p", "/home/u/.cagent-notes", "/home/u2", "/srv/p", "/home/uu"}) {
    CAPTURE(ws);
    CHECK_FALSE(refused(ws));
  }
}

TEST_CASE("workspace: one that holds the image context or the cagent executable is named") {
  const auto warned = [](const char* ws) {
    return launcher_in_workspace(ws, std::filesystem::path("/src/cagent"), "/src/cagent/build/bin/cagent");
  };
  CHECK(warned("/src/cagent").size() == 2);      // developing cagent in a cage
  CHECK(warned("/src").size() == 2);
  CHECK(warned("/src/cagent/image").size() == 1);  // part of the context
  // Controls: an ordinary project; an installed cagent with no context.
  CHECK(warned("/home/u/p").empty());
  CHECK(launcher_in_workspace("/src/cagent", std::nullopt, "/usr/bin/cagent").empty());
}
