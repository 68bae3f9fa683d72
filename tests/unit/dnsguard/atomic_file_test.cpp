#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "../common/temp_dir.hpp"
#include "dnsguard/atomic_file.hpp"

using namespace cagent::dnsguard;
using cagent::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

}  // namespace

TEST_CASE("atomic file: replaces the content whole, with its mode whatever the umask, and leaves nothing else") {
  TempDir dir;
  const fs::path file = dir.path() / "record.json";
  write_file_atomically(file, "old\n");
  CHECK(slurp(file) == "old\n");
  const mode_t old_mask = ::umask(077);
  const std::string big(1 << 20, 'x');  // more than one write() may take
  write_file_atomically(file, big, ReplaceOptions{.mode = 0644, .sync = false});
  ::umask(old_mask);
  CHECK(slurp(file) == big);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  write_file_atomically(file, "", ReplaceOptions{.mode = 0600});
  CHECK(slurp(file).empty());
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"record.json"});
}

TEST_CASE("atomic file: a symlink at the name is replaced, never written through") {
  TempDir dir;
  const fs::path target = dir.path() / "elsewhere";
  write_file_atomically(target, "theirs\n");
  fs::create_symlink(target, dir.path() / "config.yaml");
  write_file_atomically(dir.path() / "config.yaml", "mine\n");
  CHECK(slurp(target) == "theirs\n");
  CHECK(!fs::is_symlink(dir.path() / "config.yaml"));
  CHECK(slurp(dir.path() / "config.yaml") == "mine\n");
}

TEST_CASE("atomic file: a failure is one line naming the step, the file and errno: the old content stays") {
  TempDir dir;
  // No such directory: the temporary cannot be made.
  try {
    write_file_atomically(dir.path() / "missing" / "decisions.json", "x");
    FAIL("no error");
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    CHECK(what.rfind("create " + (dir.path() / "missing").string() + "/.decisions.json.", 0) == 0);
    CHECK(what.find("No such file or directory") != std::string::npos);
    CHECK(e.code().value() == ENOENT);
    CHECK(what.find('\n') == std::string::npos);
  }
  // The name is a directory: the rename fails, the temporary goes.
  fs::create_directory(dir.path() / "taken");
  fs::create_directory(dir.path() / "taken" / "inside");
  CHECK_THROWS_WITH_AS(write_file_atomically(dir.path() / "taken", "x"), doctest::Contains("rename onto"),
                       std::system_error);
  CHECK(fs::is_directory(dir.path() / "taken" / "inside"));
  CHECK(names_in(dir.path()) == std::vector<std::string>{"taken"});
}
