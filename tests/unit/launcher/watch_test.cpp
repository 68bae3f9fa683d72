#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dnsguard/contracts.hpp"
#include "launcher/host/cli.hpp"
#include "launcher/host/live.hpp"
#include "launcher/host/watch.hpp"
#include "tests/unit/launcher/test_util.hpp"

using namespace cagent::launcher::host;
namespace dg = cagent::dnsguard;

namespace {

dg::WatchEvent event(dg::WatchWhat what, const std::string& name, std::uint16_t type = 1, std::uint64_t wait = 0) {
  return dg::WatchEvent{what, name, type, wait};
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `file` until it holds `text` (10 s at most): the loop under test
// runs in another thread and writes its lines there.
bool wait_for_text(const std::filesystem::path& file, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_all(file).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("cagent watch: its command line") {
  auto c = parse_live_command({"watch"});
  REQUIRE(c);
  CHECK(c->kind == LiveCommand::Kind::watch);
  CHECK(!c->session);
  c = parse_live_command({"watch", "ab12"});
  CHECK(c->session == "ab12");
  CHECK(!c->all);
  c = parse_live_command({"watch", "--all"});
  CHECK(c->all);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"watch", "ab12", "cd34"}, {"watch", "--json"}, {"watch", "not-hex"}}) {
    CAPTURE(bad.back());
    CHECK_THROWS_AS(parse_live_command(bad), UsageError);
  }
}

TEST_CASE("cagent watch: the exec keeps stdin open, keys are one byte each") {
  RunningCage cage;
  cage.container = "cagent-1";
  CHECK(watch_argv(cage) == std::vector<std::string>{"docker", "exec", "-i", "-u", "0", "cagent-1",
                                                      "/usr/local/bin/dnsguard", "--control",
                                                      "/var/log/cagent/control/dnsguard.sock", "watch"});
  CHECK(control_argv(cage, "refuse", {"x.example"}).back() == "x.example");
  CHECK(watch_key('a') == WatchKey::allow);
  CHECK(watch_key('W') == WatchKey::save_workspace);
  CHECK(watch_key('g') == WatchKey::save_global);
  CHECK(watch_key('d') == WatchKey::keep_denied);
  CHECK(watch_key('q') == WatchKey::quit);
  CHECK(!watch_key('\n'));
  CHECK(!watch_key('y'));
}

TEST_CASE("cagent watch: stream lines are the reply, then events, else the error to report") {
  const std::string reply = dg::write_control_reply({.ok = true, .op = dg::ControlOp::watch});
  CHECK(std::holds_alternative<dg::ControlReply>(read_stream_line(reply.substr(0, reply.size() - 1), true)));
  const std::string held = dg::write_watch_event(event(dg::WatchWhat::held, "x.example", 1, 3000));
  const StreamLine e = read_stream_line(held.substr(0, held.size() - 1), false);
  REQUIRE(std::holds_alternative<dg::WatchEvent>(e));
  CHECK(std::get<dg::WatchEvent>(e).wait_ms == 3000);
  // An event where the reply belongs (or the reverse) is not taken for it.
  CHECK(std::holds_alternative<StreamError>(read_stream_line(held.substr(0, held.size() - 1), true)));
  const StreamLine docker = read_stream_line("Error response from daemon: container is not running", true);
  REQUIRE(std::holds_alternative<StreamError>(docker));
  CHECK(std::get<StreamError>(docker).text == "Error response from daemon: container is not running");
  CHECK(std::holds_alternative<StreamError>(read_stream_line("{\"version\":2}", false)));
}

TEST_CASE("cagent watch: the queue keeps one decision per session and name, held ones first") {
  DecisionQueue q;
  CHECK(q.on_event("s1", event(dg::WatchWhat::denied, "a.example")) == "s1 denied a.example A");
  CHECK(q.on_event("s1", event(dg::WatchWhat::held, "b.example", 28, 2500)) ==
        "s1 held b.example AAAA (waits up to 3 s)");
  REQUIRE(q.front() != nullptr);
  CHECK(q.front()->name == "b.example");  // held goes ahead of the one denied at once
  CHECK(q.on_event("s1", event(dg::WatchWhat::held, "a.example", 1, 3000)) == "s1 held a.example A (waits up to 3 s)");
  CHECK(q.on_event("s2", event(dg::WatchWhat::held, "a.example", 1, 3000)).rfind("s2 held", 0) == 0);
  REQUIRE(q.size() == 3);
  CHECK(q.front()->name == "b.example");
  CHECK(prompt_line(*q.front(), q.size()) ==
        "cagent watch: s1 b.example AAAA? a allow for the session, w save to its workspace, g save globally, d keep "
        "denied (2 more waiting)");
  // Decided elsewhere (another watcher, cagent allow, the timeout): it leaves.
  CHECK(q.on_event("s1", event(dg::WatchWhat::timed_out, "b.example", 0)) == "s1 timed_out b.example");
  CHECK(q.front()->name == "a.example");
  CHECK(q.front()->held);  // a held lookup of a name denied before: now it waits
  CHECK(q.on_event("s1", event(dg::WatchWhat::allowed, "a.example", 0)) == "s1 allowed a.example");
  REQUIRE(q.size() == 1);
  CHECK(q.front()->session == "s2");
  auto d = q.take();
  REQUIRE(d);
  CHECK(q.size() == 0);
  q.put_back(*d);
  CHECK(q.front()->session == "s2");
  q.drop_session("s2");
  CHECK(!q.take());
  // The agent chooses the names: a terminal never sees them raw.
  CHECK(q.on_event("s1", event(dg::WatchWhat::denied, "e\x1b[2Jvil.example")).rfind("s1 denied e\\x1b[2Jvil.example A", 0) == 0);
}

TEST_CASE("cagent watch: a flood of denied names cannot push a held one out") {
  DecisionQueue q;
  for (std::size_t i = 0; i < DecisionQueue::kMaxPending + 5; ++i)
    (void)q.on_event("s1", event(dg::WatchWhat::denied, "n" + std::to_string(i) + ".flood.example"));
  CHECK(q.size() == DecisionQueue::kMaxPending);
  CHECK(q.on_event("s1", event(dg::WatchWhat::denied, "late.example")).find("not queued") != std::string::npos);
  // Positive control: the held name after the junk is queued, and first.
  CHECK(q.on_event("s1", event(dg::WatchWhat::held, "pypi.example", 1, 3000)).find("not queued") == std::string::npos);
  CHECK(q.size() == DecisionQueue::kMaxPending);
  CHECK(q.front()->name == "pypi.example");
  // The newest denied one made room.
  auto all = [&] {
    std::vector<std::string> names;
    DecisionQueue copy = q;
    while (auto d = copy.take()) names.push_back(d->name);
    return names;
  }();
  CHECK(std::find(all.begin(), all.end(), "n" + std::to_string(DecisionQueue::kMaxPending - 1) + ".flood.example") ==
        all.end());
  CHECK(std::find(all.begin(), all.end(), "n0.flood.example") != all.end());
  // Held ones fill the queue too: then a held one is not queued either.
  DecisionQueue h;
  for (std::size_t i = 0; i < DecisionQueue::kMaxPending; ++i)
    (void)h.on_event("s1", event(dg::WatchWhat::held, "h" + std::to_string(i) + ".example", 1, 3000));
  CHECK(h.on_event("s1", event(dg::WatchWhat::held, "x.example", 1, 3000)).find("not queued") != std::string::npos);
}

TEST_CASE("cagent watch: names no pattern can express are shown denied, never decidable") {
  DecisionQueue q;
  for (const char* bad : {".", "-evil.example", "evil-.example", "*.example", "a..example"}) {
    CAPTURE(bad);
    CHECK(q.on_event("s1", event(dg::WatchWhat::held, bad, 1, 3000)).find("stays denied") != std::string::npos);
    CHECK(q.size() == 0);
  }
  // Positive control: an ordinary name is queued.
  CHECK(q.on_event("s1", event(dg::WatchWhat::held, "ok-name.example", 1, 3000)).find("stays denied") ==
        std::string::npos);
  CHECK(q.size() == 1);
}

TEST_CASE("cagent watch: a key answers only the prompt on screen, shown for long enough") {
  using namespace std::chrono_literals;
  DecisionQueue q;
  const DecisionQueue::Clock::time_point t0{};
  (void)q.on_event("s1", event(dg::WatchWhat::held, "pypi.example", 1, 3000));
  (void)q.on_event("s1", event(dg::WatchWhat::held, "secret-data.evil.example", 1, 3000));
  CHECK(!q.answer(t0 + 10s));  // no prompt shown yet: the key is discarded
  REQUIRE(q.show(t0));
  CHECK(!q.answer(t0 + 499ms));  // too soon after the prompt
  // The front leaves (timed out) and the agent looks it up again: the key
  // pressed for "pypi" must not decide what is now in front.
  (void)q.on_event("s1", event(dg::WatchWhat::timed_out, "pypi.example", 0));
  (void)q.on_event("s1", event(dg::WatchWhat::held, "pypi.example", 1, 3000));
  CHECK(q.front()->name == "secret-data.evil.example");
  CHECK(!q.answer(t0 + 2s));  // the prompt shown was for another decision
  // Re-printed: a new prompt, a new half second.
  const auto line = q.show(t0 + 2s);
  REQUIRE(line);
  CHECK(line->find("secret-data.evil.example") != std::string::npos);
  CHECK(!q.answer(t0 + 2s + 100ms));
  // Re-printing the same prompt (after event lines) does not restart it.
  (void)q.show(t0 + 2s + 400ms);
  // Positive control: the key after the prompt was shown long enough decides exactly that name.
  const auto d = q.answer(t0 + 2s + 500ms);
  REQUIRE(d);
  CHECK(d->name == "secret-data.evil.example");
  // The next front needs its own prompt: a second key of the same moment decides nothing.
  CHECK(!q.answer(t0 + 2s + 500ms));
  REQUIRE(q.show(t0 + 3s));
  CHECK(!q.answer(t0 + 3s));
  const auto next = q.answer(t0 + 4s);
  REQUIRE(next);
  CHECK(next->name == "pypi.example");
  // A decision put back (its control failed) is asked again, with a new prompt.
  q.put_back(*next);
  CHECK(!q.answer(t0 + 10s));
  (void)q.show(t0 + 10s);
  CHECK(q.answer(t0 + 11s));
}

TEST_CASE("cagent watch: one key per read, and q anywhere quits") {
  const KeyRead aa = read_keys("aa");
  CHECK(aa.key == WatchKey::allow);
  CHECK(aa.discarded);
  CHECK(!aa.quit);
  const KeyRead one = read_keys("\nd\n");
  CHECK(one.key == WatchKey::keep_denied);
  CHECK(!one.discarded);
  CHECK(read_keys("aq").quit);
  CHECK(!read_keys("\n").key);
}

TEST_CASE("cagent watch: nothing to watch is one line, exit 2") {
  test::FakeRunner runner;
  std::string ps_output;
  runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, ps_output, false};
    return RunResult{0, "2026-11-28T09:00:00Z\t/w/a\t[]\n", false};
  };
  HostContext host;
  std::ostringstream out, err;
  std::istringstream in;
  const auto starter = [](const std::vector<std::string>&) -> PipedChild { FAIL("no stream expected"); return {}; };
  CHECK_THROWS_WITH_AS(run_watch(*parse_live_command({"watch"}), host, runner, SessionIo{out, err, in}, {}, starter),
                       "no running cage to watch", UsageError);
  ps_output = "cagent-1\tab12\n";
  CHECK_THROWS_WITH_AS(
      run_watch(*parse_live_command({"watch", "cd34"}), host, runner, SessionIo{out, err, in}, {}, starter),
      doctest::Contains("unknown session cd34"), UsageError);
}

TEST_CASE("cagent watch: keys from a pipe decide the queued lookups, end of input detaches every stream") {
  test::TempDir tmp;
  test::FakeRunner runner;
  runner.respond = [](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-ab12\tab12\n", false};
    if (argv[1] == "inspect") return RunResult{0, "2026-11-28T09:00:00Z\t/w/a\t[]\n", false};
    // docker exec … dnsguard --control SOCKET OP NAME
    const std::string op = argv[argv.size() - 2];
    dg::ControlReply reply{.ok = true, .op = op == "allow" ? dg::ControlOp::allow : dg::ControlOp::refuse,
                           .names = {argv.back()}};
    if (op == "allow") reply.added = {argv.back()};
    return RunResult{0, dg::write_control_reply(reply), false};
  };
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  host.workspace = tmp.dir("elsewhere");
  (void)tmp.dir("home/.cagent/sessions/ab12");  // this user's cagent started it
  // The stream: dnsguard's reply and four lookups, then it waits for its
  // stdin to close and notes that it did.
  std::string lines = dg::write_control_reply({.ok = true, .op = dg::ControlOp::watch});
  lines += dg::write_watch_event(event(dg::WatchWhat::held, "x.example", 1, 3000));
  lines += dg::write_watch_event(event(dg::WatchWhat::held, "x.example", 28, 3000));
  lines += dg::write_watch_event(event(dg::WatchWhat::held, "y.example", 1, 3000));
  lines += dg::write_watch_event(event(dg::WatchWhat::denied, "z.example", 1));
  lines += dg::write_watch_event(event(dg::WatchWhat::held, "g.example", 1, 3000));
  const std::filesystem::path detached = tmp / "detached";
  std::vector<std::string> stream_argv;
  const StreamStarter starter = [&](const std::vector<std::string>& argv) {
    stream_argv = argv;
    return start_piped({"sh", "-c", "printf '%s' \"$1\"; cat >/dev/null; echo yes >\"$2\"", "sh", lines,
                        detached.string()});
  };
  int keys[2];
  REQUIRE(::pipe2(keys, O_CLOEXEC) == 0);
  std::ofstream out(tmp / "out"), err(tmp / "err");
  std::istringstream in;
  // The test's clock: keys count only once their prompt has been shown for
  // half a second of it.
  std::atomic<long long> ms{0};
  WatchKeys watch_keys{keys[0], false};
  watch_keys.now = [&] { return DecisionQueue::Clock::time_point{} + std::chrono::milliseconds(ms.load()); };
  int status = -1;
  std::thread loop([&] {
    status = run_watch(*parse_live_command({"watch"}), host, runner, SessionIo{out, err, in}, watch_keys, starter);
  });
  const bool shown = wait_for_text(tmp / "out", "ab12 held g.example A") &&
                     wait_for_text(tmp / "err", "cagent watch: ab12 (/w/a) x.example A? a allow");
  const auto press = [&](const std::string& typed, const std::string& then) {
    CHECK(::write(keys[1], typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
    return wait_for_text(tmp / "err", then);
  };
  // Held ones first: x, y, g, then z (denied at once).
  ms = 1000;
  // a: allow x; the d typed ahead in the same read is discarded.
  const bool x = press("ad", "allowed x.example (until the session ends)");
  // d at once after y's prompt appeared: too soon, ignored.
  const bool early = press("d", "key ignored: the prompt is new");
  ms = 2000;
  const bool y = press("d", "kept denied y.example");    // refuse y (held)
  ms = 3000;
  const bool g = press("\ng", "allowed g.example (saved");  // save g globally and allow it
  ms = 4000;
  const bool z = press("d", "kept denied z.example");    // z stays denied (nothing held: no exec)
  ms = 5000;
  const bool decided = press(" a", "nothing to decide");
  ::close(keys[1]);  // end of input: cagent watch ends
  loop.join();
  ::close(keys[0]);
  REQUIRE(shown);
  CHECK(x);
  CHECK(early);
  CHECK(y);
  CHECK(g);
  CHECK(z);
  REQUIRE(decided);
  CHECK(status == 0);
  CHECK(stream_argv == watch_argv(RunningCage{"cagent-ab12", "ab12", "/w/a", {}, 0, false}));
  const std::string o = read_all(tmp / "out");
  CHECK(o == "ab12 held x.example A (waits up to 3 s)\nab12 held x.example AAAA (waits up to 3 s)\n"
             "ab12 held y.example A (waits up to 3 s)\nab12 denied z.example A\n"
             "ab12 held g.example A (waits up to 3 s)\n");
  const std::string e = read_all(tmp / "err");
  CHECK(e.find("cagent watch: ab12 (/w/a) x.example A? a allow") != std::string::npos);
  CHECK(e.find("session ab12: allowed x.example (until the session ends)") != std::string::npos);
  CHECK(e.find("session ab12: kept denied y.example") != std::string::npos);
  CHECK(e.find("session ab12: kept denied z.example") != std::string::npos);
  CHECK(e.find("session ab12: allowed g.example (saved to " + (host.cagent_home / "config.yaml").string() + ")") !=
        std::string::npos);
  const std::vector<std::string> exec{"docker", "exec", "-u", "0", "cagent-1"};
  const auto control = [&](const std::string& op, const std::string& name) {
    std::vector<std::string> argv = control_argv(RunningCage{"cagent-ab12", "ab12", "/w/a", {}, 0, false}, op, {name});
    return std::find(runner.calls.begin(), runner.calls.end(), argv) != runner.calls.end();
  };
  CHECK(control("allow", "x.example"));
  CHECK(control("refuse", "y.example"));
  CHECK_FALSE(control("refuse", "z.example"));
  CHECK(control("allow", "g.example"));
  CHECK(read_all(host.cagent_home / "config.yaml").find("g.example") != std::string::npos);
  // Closing its stdin ended the exec (it was reaped before run_watch returned).
  CHECK(read_all(detached) == "yes\n");
}

TEST_CASE("cagent watch SESSION: a cage that goes away ends its stream, said in one line") {
  test::TempDir tmp;
  test::FakeRunner runner;
  bool running = true;  // what docker ps says about cagent-1
  runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, running ? "cagent-1\tab12\ncagent-2\tcd34\n" : "cagent-2\tcd34\n", false};
    return RunResult{0, "2026-11-28T09:00:00Z\t/w/a\t[]\n", false};
  };
  HostContext host;
  std::string stream_output;
  const StreamStarter starter = [&](const std::vector<std::string>&) {
    running = false;  // the cage stops while its stream runs: the stream ends by itself
    return start_piped({"sh", "-c", "printf '%s' \"$1\"", "sh", stream_output});
  };
  int keys[2];
  REQUIRE(::pipe2(keys, O_CLOEXEC) == 0);  // held open: the loop ends because the stream did
  std::ostringstream out, err;
  std::istringstream in;
  stream_output = dg::write_control_reply({.ok = true, .op = dg::ControlOp::watch}) +
                  dg::write_watch_event(event(dg::WatchWhat::denied, "x.example"));
  CHECK(run_watch(*parse_live_command({"watch", "--all", "ab12"}), host, runner, SessionIo{out, err, in},
                  WatchKeys{keys[0], false}, starter) == 0);
  CHECK(out.str() == "ab12 denied x.example A\n");
  CHECK(err.str().find("cagent watch: session ab12: its cage is gone\n") != std::string::npos);
  CHECK(err.str().find("nothing left to watch") != std::string::npos);
  // dnsguard refuses the watch (another version, say): its reason.
  running = true;
  err.str("");
  stream_output = dg::write_control_reply({.ok = false, .error = "unknown op", .op = dg::ControlOp::watch});
  const StreamStarter refusing = [&](const std::vector<std::string>&) {
    return start_piped({"sh", "-c", "printf '%s' \"$1\"", "sh", stream_output});
  };
  CHECK(run_watch(*parse_live_command({"watch", "--all", "ab12"}), host, runner, SessionIo{out, err, in},
                  WatchKeys{keys[0], false}, refusing) == 0);
  CHECK(err.str().find("cagent watch: session ab12: cannot watch: unknown op\n") != std::string::npos);
  ::close(keys[0]);
  ::close(keys[1]);
}

TEST_CASE("cagent watch: only this user's sessions unless --all") {
  test::TempDir tmp;
  test::FakeRunner runner;
  // ab12: ours (its session directory, cagent's container name); cd34:
  // another user's; ef56: a container that only carries our session's label.
  runner.respond = [&](const std::vector<std::string>& argv) {
    if (argv[1] == "ps") return RunResult{0, "cagent-ab12\tab12\ncagent-cd34\tcd34\nfake-ab12\tab12\n", false};
    return RunResult{0, "2026-11-28T09:00:00Z\t/w/a\t[]\n", false};
  };
  HostContext host;
  host.cagent_home = tmp.dir("home/.cagent");
  (void)tmp.dir("home/.cagent/sessions/ab12");
  std::vector<std::string> watched;
  const StreamStarter starter = [&](const std::vector<std::string>& argv) {
    watched.push_back(argv[5]);  // docker exec -i -u 0 CONTAINER …
    return start_piped({"true"});  // ends at once: nothing left to watch
  };
  int keys[2];
  REQUIRE(::pipe2(keys, O_CLOEXEC) == 0);
  std::ostringstream out, err;
  std::istringstream in;
  // Positive control: our own session is watched, by default.
  CHECK(run_watch(*parse_live_command({"watch", "ab12"}), host, runner, SessionIo{out, err, in},
                  WatchKeys{keys[0], false}, starter) == 0);
  CHECK(watched == std::vector<std::string>{"cagent-ab12"});
  // By default: ours only (not the other user's, not the one with a borrowed label).
  watched.clear();
  {
    int ended[2];
    REQUIRE(::pipe2(ended, O_CLOEXEC) == 0);
    ::close(ended[1]);  // end of input at once: the loop ends after attaching
    CHECK(run_watch(*parse_live_command({"watch"}), host, runner, SessionIo{out, err, in},
                    WatchKeys{ended[0], false}, starter) == 0);
    ::close(ended[0]);
  }
  CHECK(watched == std::vector<std::string>{"cagent-ab12"});
  // Another user's session, named: refused without --all.
  CHECK_THROWS_WITH_AS(run_watch(*parse_live_command({"watch", "cd34"}), host, runner, SessionIo{out, err, in},
                                 WatchKeys{keys[0], false}, starter),
                       doctest::Contains("not started by your cagent"), UsageError);
  // With --all it is watched.
  watched.clear();
  CHECK(run_watch(*parse_live_command({"watch", "--all", "cd34"}), host, runner, SessionIo{out, err, in},
                  WatchKeys{keys[0], false}, starter) == 0);
  CHECK(watched == std::vector<std::string>{"cagent-cd34"});
  // Nobody's cage of ours: one line, exit 2.
  host.cagent_home = tmp.dir("other/.cagent");
  CHECK_THROWS_WITH_AS(run_watch(*parse_live_command({"watch"}), host, runner, SessionIo{out, err, in},
                                 WatchKeys{keys[0], false}, starter),
                       doctest::Contains("no running cage of yours"), UsageError);
  ::close(keys[0]);
  ::close(keys[1]);
}

TEST_CASE("cagent watch: decisions are keyed by container, and the prompt says whose workspace") {
  DecisionQueue q;
  RunningCage mine{"cagent-ab12", "ab12", "/home/a/proj", {}, 0, false};
  RunningCage forged{"fake-ab12", "ab12", "/home/b/x", {}, 0, false};
  (void)q.on_event(mine, event(dg::WatchWhat::held, "x.example", 1, 3000));
  (void)q.on_event(forged, event(dg::WatchWhat::held, "x.example", 1, 3000));
  CHECK(q.size() == 2);  // same label, same name: two decisions
  CHECK(prompt_line(*q.front(), q.size()).rfind("cagent watch: ab12 (/home/a/proj) x.example A?", 0) == 0);
  (void)q.on_event(forged, event(dg::WatchWhat::allowed, "x.example", 0));
  REQUIRE(q.size() == 1);
  CHECK(q.front()->container == "cagent-ab12");
  q.drop_session("fake-ab12");
  CHECK(q.size() == 1);
  q.drop_session("cagent-ab12");
  CHECK(q.size() == 0);
}

TEST_CASE("cagent watch: a flood of denied lines is folded into one line a second") {
  using namespace std::chrono_literals;
  EventThrottle t;
  const EventThrottle::Clock::time_point t0{};
  int printed = 0;
  for (int i = 0; i < 20000; ++i) printed += t.admit("cagent-ab12", "ab12", t0 + std::chrono::microseconds(i)) ? 1 : 0;
  CHECK(printed == EventThrottle::kPerSecond);
  CHECK(t.due(t0 + 500ms).empty());  // the second is not over
  // Positive control: another session's lines still print.
  CHECK(t.admit("cagent-cd34", "cd34", t0 + 500ms));
  const auto lines = t.due(t0 + 1s);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "ab12 … and " + std::to_string(20000 - EventThrottle::kPerSecond) + " more denied names");
  CHECK(t.due(t0 + 3s).empty());
  // The next second prints again.
  CHECK(t.admit("cagent-ab12", "ab12", t0 + 3s));
}

TEST_CASE("watch: dnsguard's count of the events it did not send is shown with the next one") {
  DecisionQueue q;
  dg::WatchEvent e{.event = dg::WatchWhat::denied, .name = "a.example", .type = 1};
  CHECK(q.on_event("s1", e).find("did not send") == std::string::npos);  // the control: nothing dropped
  e.name = "b.example";
  e.dropped = 926;
  CHECK(q.on_event("s1", e).find("and 926 earlier events dnsguard did not send") != std::string::npos);
}
