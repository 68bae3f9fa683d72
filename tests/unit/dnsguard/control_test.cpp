#include <doctest/doctest.h>

#include <string>

#include "dnsguard/control.hpp"

using namespace cagent::dnsguard;

namespace {
ControlRequest request(ControlOp op, std::vector<std::string> patterns = {}) { return {op, std::move(patterns)}; }
}  // namespace

TEST_CASE("live policy: allow adds names for the next lookup, deny takes only run-time additions back") {
  LivePolicy live({"github.com", "*.githubusercontent.com"});
  auto out = live.execute(request(ControlOp::allow, {"PyPI.org.", "*.pythonhosted.org", "github.com"}));
  REQUIRE(out.reply.ok);
  CHECK(out.reply.op == ControlOp::allow);
  CHECK(out.reply.names == std::vector<std::string>{"pypi.org", "*.pythonhosted.org", "github.com"});
  CHECK(out.reply.added == std::vector<std::string>{"pypi.org", "*.pythonhosted.org"});  // github.com: already
  CHECK(describe(out.reply) == "allowed pypi.org *.pythonhosted.org github.com");
  REQUIRE(out.next);
  CHECK(out.next->allows("pypi.org"));
  CHECK(out.next->allows("files.pythonhosted.org"));
  CHECK(out.next->allows("github.com"));
  CHECK(out.next->allows("raw.githubusercontent.com"));
  CHECK(!out.next->allows("example.com"));
  CHECK(out.next->exact_names() == std::vector<std::string>{"github.com", "pypi.org"});

  out = live.execute(request(ControlOp::allow, {"pypi.org"}));  // idempotent: no new list
  CHECK(out.reply.ok);
  CHECK(!out.next);
  CHECK(out.reply.added.empty());

  out = live.execute(request(ControlOp::deny, {"pypi.org"}));
  REQUIRE(out.reply.ok);
  CHECK(out.reply.names == std::vector<std::string>{"pypi.org"});
  CHECK(!out.reply.evicted);  // the server fills it in when it evicted
  REQUIRE(out.next);
  CHECK(!out.next->allows("pypi.org"));
  CHECK(out.next->allows("a.pythonhosted.org"));
  const auto list = live.execute(request(ControlOp::list));
  CHECK(list.reply.ok);
  CHECK(list.reply.names == std::vector<std::string>{"*.pythonhosted.org"});
  CHECK(describe(list.reply) == "*.pythonhosted.org");
}

TEST_CASE("live policy: errors change nothing") {
  LivePolicy live({"github.com"});
  REQUIRE(live.execute(request(ControlOp::allow, {"a.example"})).reply.ok);
  const std::vector<ControlRequest> bad = {
      request(ControlOp::allow, {"good.example", "bad..name"}), request(ControlOp::allow, {"*"}),
      request(ControlOp::allow, {"a.*.example"}),               request(ControlOp::deny, {"github.com"}),
      request(ControlOp::deny, {"never.example"}),              request(ControlOp::deny, {"a.example", "never.example"}),
      request(ControlOp::allow),                                request(ControlOp::deny),
      request(ControlOp::allow, {"bad\nname"})};
  for (const ControlRequest& r : bad) {
    CAPTURE(r.patterns.size());
    auto out = live.execute(r);
    CHECK(!out.reply.ok);
    CHECK(!out.next);
    CHECK(!out.reply.error.empty());
    CHECK(out.reply.error.find('\n') == std::string::npos);
    CHECK(out.reply.names.empty());
    CHECK(out.reply.added.empty());
    CHECK(describe(out.reply) == out.reply.error);
  }
  CHECK(live.added() == std::vector<std::string>{"a.example"});
  CHECK(live.execute(request(ControlOp::deny, {"github.com"})).reply.error.find("policy file") != std::string::npos);
  CHECK(live.execute(request(ControlOp::allow, {"bad..name"})).reply.error.rfind("invalid pattern bad..name: ", 0) == 0);
  CHECK(live.execute(request(ControlOp::allow, {"bad\nname"})).reply.error.rfind("invalid pattern (unprintable): ", 0) == 0);
}
