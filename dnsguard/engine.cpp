#include "dnsguard/engine.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace cagent::dnsguard {

namespace {
const char* verdict_rcode_name(std::uint8_t rc) {
  switch (rc) {
    case rcode::FORMERR: return "FORMERR";
    case rcode::NOTIMP: return "NOTIMP";
    case rcode::REFUSED: return "REFUSED";
    case rcode::NXDOMAIN: return "NXDOMAIN";
    default: return "?";
  }
}
}  // namespace

QueryEngine::QueryEngine(const Config& config, AnswerSink& sink, Logger& log, Counters& counters)
    : config_(config),
      sink_(sink),
      log_(log),
      counters_(counters),
      allow_(config.allow),
      cache_(config.cache_size) {
  info_.addresses.reserve(64);
  info_.ttl_offsets.reserve(64);
  pending_.reserve(64);
  pending_ttl_offsets_.reserve(64);
  held_.reserve(64);
  info_.strays.reserve(64);
  drop_.reserve(64);
  scratch_.resize(kMaxMessage);
}

std::size_t QueryEngine::strip_unreachable(std::span<std::uint8_t> bytes, const Query& q) noexcept {
  drop_.assign(info_.strays.begin(), info_.strays.end());
  for (const auto& found : info_.addresses) {
    if (!found.hint && !may_insert(found.addr, config_.allow_cidrs) && !is_loopback(found.addr)) {
      drop_.push_back(found.record);
      ++counters_.filtered;  // insert() no longer sees it
    }
  }
  // With the gate on, answers lose their ECH parameters: an encrypted
  // ClientHello would hide the name the gate judges.
  const bool drop_ech = config_.gate_enabled && info_.ech;
  if (drop_.empty() && !drop_ech) return bytes.size();
  std::sort(drop_.begin(), drop_.end(), [](const RrRange& a, const RrRange& b) { return a.start < b.start; });
  drop_.erase(std::unique(drop_.begin(), drop_.end()), drop_.end());
  const std::size_t n = strip_records(bytes, drop_, scratch_, drop_ech);
  if (n == 0 || n > bytes.size()) return 0;
  std::memcpy(bytes.data(), scratch_.data(), n);
  if (analyzer_.analyze(bytes.first(n), q.qname, q.qtype, info_) != ResponseAnalyzer::Result::ok) return 0;
  counters_.stripped += drop_.size();
  return n;
}

std::uint32_t QueryEngine::clamp_ttl(std::uint32_t ttl) const noexcept {
  return std::clamp(ttl, config_.ttl_min, config_.ttl_max);
}

// Half the wanted timeout, but never below ttl.min (nor above the timeout):
// an address the set holds at least this long is not sent to the kernel
// again, and the answer's TTL for it is capped at what the set holds.
std::uint32_t QueryEngine::floor_of(std::uint32_t timeout) const noexcept {
  return std::min(timeout, std::max(timeout / 2, config_.ttl_min));
}

std::size_t QueryEngine::servfail(std::span<const std::uint8_t> query, const Query& q,
                                  std::span<std::uint8_t> out) {
  ++counters_.servfail;
  return build_error_response(query, q.question_end, q.edns, rcode::SERVFAIL, out);
}

template <typename TimeoutFn>
std::optional<std::uint32_t> QueryEngine::insert(const ResponseInfo& info, TimeoutFn timeout,
                                                 bool floors, std::string_view name,
                                                 Clock::time_point now) {
  pending_.clear();
  pending_ttl_offsets_.clear();
  for (const auto& found : info.addresses) {
    if (!may_insert(found.addr, config_.allow_cidrs)) {
      ++counters_.filtered;
      continue;
    }
    AllowedAddress a;
    a.v6 = found.addr.v6;
    a.bytes = found.addr.bytes;
    a.timeout_s = std::max<std::uint32_t>(1, timeout(found.ttl));  // never 0: "never expires"
    if (floors) {
      std::uint32_t f = floor_of(a.timeout_s);
      a.min_timeout_s = f < a.timeout_s ? f : 0;
    }
    pending_.push_back(a);
    pending_ttl_offsets_.push_back(found.ttl_offset);
  }
  if (pending_.empty()) return kNoCap;
  // No room to bind them all: none enters the sets (fail closed). An
  // address in a set without its binding would outlive a run-time deny of
  // its name (release_denied() finds addresses by their bindings) — and
  // the agent can fill the table, e.g. through a wildcard whose zone
  // answers any name.
  if (!bindings_.has_room(name, pending_, now)) {
    ++counters_.binding_failures;
    log_.event(LogLevel::error, "name bindings full; answering SERVFAIL");
    return std::nullopt;
  }
  held_.assign(pending_.size(), 0);
  if (!sink_.hold(pending_, held_)) {
    ++counters_.insert_failures;
    log_.event(LogLevel::error, "set insert failed; answering SERVFAIL");
    return std::nullopt;
  }
  counters_.inserts += pending_.size();
  // Bound with the gate off too: a run-time deny needs to know which
  // addresses only the denied name holds (release_denied()).
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    IpAddress addr;
    addr.v6 = pending_[i].v6;
    addr.bytes = pending_[i].bytes;
    // As long as the set element: the promise plus the set's grace.
    Clock::time_point to_journal;
    if (!bindings_.bind(name, addr, now + std::chrono::seconds(held_[i]) + kBindingGrace, now,
                        journal_ != nullptr ? &to_journal : nullptr, kJournalSlack)) {
      ++counters_.binding_failures;  // not after has_room(), on this one thread
    } else if (to_journal != Clock::time_point{}) {
      journal_binding(name, addr, to_journal, now);
    }
  }
  return *std::min_element(held_.begin(), held_.end());
}

void QueryEngine::journal_binding(std::string_view name, const IpAddress& addr, Clock::time_point until,
                                  Clock::time_point now) {
  if (journal_->append(name, addr, until) || !journal_->full() || journal_full_logged_) return;
  // Full: most lines are extensions and pairs long expired. Compacted to
  // the live bindings (which include this one) unless even they fill half
  // the bound — then it stays full rather than be rewritten on every miss.
  try {
    journal_->rewrite(journal_entries(now));
    if (journal_->size() <= journal_->max_bytes() / 2) return;
  } catch (const std::exception& e) {
    log_.event(LogLevel::warning, std::string("gate binding journal could not be compacted: ") + e.what());
  }
  journal_full_logged_ = true;
  log_.event(LogLevel::warning, "gate binding journal full; later bindings would not survive a restart");
}

std::vector<JournalEntry> QueryEngine::journal_entries(Clock::time_point now) const {
  std::vector<JournalEntry> entries;
  bindings_.for_each_live(now, [&](std::string_view name, const IpAddress& addr, Clock::time_point journalled) {
    entries.push_back({std::string(name), addr, journalled});
  });
  return entries;
}

bool QueryEngine::admit(std::string_view name, const IpAddress& destination, Clock::time_point connected) noexcept {
  return config_.gate_enabled && permits(name) && bindings_.bound(name, destination, connected);
}

std::optional<std::size_t> QueryEngine::release_denied(Clock::time_point now) {
  const auto still_allowed = [this](std::string_view name) { return permits(name); };
  const std::vector<IpAddress> orphans = bindings_.orphans(still_allowed, now);
  if (!orphans.empty() && !sink_.evict(orphans)) {
    // The bindings stay, so the next deny tries these addresses again.
    log_.event(LogLevel::error, "could not take " + std::to_string(orphans.size()) +
                                    " addresses of names taken back out of the sets; they leave at their timeout"
                                    " or with the next deny");
    return std::nullopt;
  }
  bindings_.forget(still_allowed);
  return orphans.size();
}

void QueryEngine::cap_to_held(std::span<std::uint8_t> wire) const noexcept {
  for (std::size_t i = 0; i < pending_.size() && i < held_.size(); ++i) {
    std::size_t off = pending_ttl_offsets_[i];
    if (off + 4u > wire.size()) continue;
    if (read32(wire, off) > held_[i]) write32(wire, off, held_[i]);
  }
}

std::size_t QueryEngine::deny_response(std::span<const std::uint8_t> query, const Query& q, std::string_view name,
                                       bool tcp, std::uint8_t rc, std::span<std::uint8_t> out,
                                       HeldEnd why) const noexcept {
  const std::size_t size = build_error_response(query, q.question_end, q.edns, rc, out);
  if (size == 0 || !q.edns) return size;
  // The answer says why and how to fix it, so an agent stops guessing
  // (RFC 8914 "Blocked"). The fix is named for the user on the host; the
  // agent reading it cannot act on it. Built on the stack: no allocation.
  // A held lookup nobody decided in time says so (ask mode): the user saw
  // it in cagent watch and may still allow it.
  static constexpr std::string_view kPolicy = "blocked by cagent policy; to allow it, run on the host: cagent allow ";
  static constexpr std::string_view kTimedOut =
      "pending approval timed out; blocked by cagent policy; to allow it, run on the host: cagent allow ";
  const std::string_view prefix = why == HeldEnd::timed_out ? kTimedOut : kPolicy;
  std::array<char, kTimedOut.size() + 256> text{};
  std::memcpy(text.data(), prefix.data(), prefix.size());
  std::size_t len = prefix.size();
  if (name.empty() || name.size() > 255) return size;  // unprintable name: the rcode alone
  for (char c : name) text[len++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  const std::size_t limit = tcp ? kMaxMessage : q.udp_size;
  return append_extended_error(out, size, limit, ede::kBlocked, std::string_view(text.data(), len));
}

void QueryEngine::count_denied(const Query& q, bool printable, const IpEndpoint& client) {
  ++counters_.denied;
  // The exact record first: the log line below may be rate-limited.
  if (decisions_ != nullptr)
    decisions_->denied(printable ? q.name() : std::string_view("<bad label bytes>"), q.qtype,
                       DecisionRecord::WallClock::now());
  if (log_.enabled(LogLevel::info)) {
    log_.event(LogLevel::info, "denied name=" + (printable ? std::string(q.name()) : "<bad label bytes>") +
                                   " type=" + std::to_string(q.qtype) + " client=" + to_string(client));
  }
}

std::size_t QueryEngine::deny_held(std::span<const std::uint8_t> query, const Query& q, const IpEndpoint& client,
                                   bool tcp, HeldEnd why, std::span<std::uint8_t> out) {
  count_denied(q, true, client);
  return deny_response(query, q, q.name(), tcp, static_cast<std::uint8_t>(config_.deny_rcode), out, why);
}

QueryEngine::Local QueryEngine::handle_local(std::span<const std::uint8_t> query, Query& q,
                                             const IpEndpoint& client, bool tcp,
                                             std::span<std::uint8_t> out, Clock::time_point now) {
  ++counters_.queries;
  Verdict verdict = classify_query(query, allow_, q);
  // Learn mode: a name the allowlist does not allow is resolved like an
  // allowed one, and counted for the proposal the host makes at the end.
  // A name that is not printable (bad label bytes) stays denied: no
  // allowlist could name it.
  if (verdict == Verdict::deny && config_.learn && name_to_text(q.qname, q.text, q.text_len)) {
    verdict = Verdict::forward;
    ++counters_.learned;
    if (decisions_ != nullptr) decisions_->learned(q.name(), DecisionRecord::WallClock::now());
  }
  std::uint8_t rc = 0;
  switch (verdict) {
    case Verdict::drop:
      ++counters_.malformed;
      return {};
    case Verdict::formerr:
      q.question_end = 0;
      rc = rcode::FORMERR;
      break;
    case Verdict::notimp:
      rc = rcode::NOTIMP;
      break;
    case Verdict::refused:
      rc = rcode::REFUSED;
      break;
    case Verdict::deny:
      rc = static_cast<std::uint8_t>(config_.deny_rcode);
      {
        const bool printable = name_to_text(q.qname, q.text, q.text_len);
        // Ask mode: an approver may still allow it; the server holds it.
        if (holding_ && printable) {
          ++counters_.held;
          return {Action::hold, 0};
        }
        count_denied(q, printable, client);
        return {Action::answer, deny_response(query, q, printable ? q.name() : std::string_view(), tcp, rc, out),
                printable};
      }
    case Verdict::forward:
      break;
  }
  if (verdict != Verdict::forward) {
    ++counters_.refused;
    if (log_.enabled(LogLevel::debug))
      log_.event(LogLevel::debug, std::string("answered ") + verdict_rcode_name(rc) +
                                      " type=" + std::to_string(q.qtype) +
                                      " client=" + to_string(client));
    return {Action::answer, build_error_response(query, q.question_end, q.edns, rc, out)};
  }

  ++counters_.allowed;
  auto hit = cache_.lookup(q.qname, q.qtype, now);
  if (!hit) return {Action::needs_upstream, 0};
  if (hit->wire.size() > out.size()) return {Action::needs_upstream, 0};
  std::memcpy(out.data(), hit->wire.data(), hit->wire.size());
  auto bytes = out.first(hit->wire.size());
  if (analyzer_.analyze(bytes, q.qname, q.qtype, info_) != ResponseAnalyzer::Result::ok)
    return {Action::needs_upstream, 0};
  ++counters_.cache_hits;
  // Re-assert the set entries for exactly the TTL we are about to hand out
  // (the stored TTLs are already capped at ttl.max). The set updater sends
  // nothing when the kernel already holds them that long, which is the
  // normal case: they were inserted with clamp(TTL) when the answer came in.
  std::uint32_t elapsed = hit->elapsed_s;
  if (!insert(
          info_,
          [&](std::uint32_t ttl) {
            std::uint32_t handed = std::min(ttl, config_.ttl_max);
            return handed > elapsed ? handed - elapsed : 1;
          },
          true, q.name(), now))
    return {Action::answer, servfail(query, q, out)};
  rewrite_ttls(bytes, info_, config_.ttl_max, elapsed);
  cap_to_held(bytes);
  std::size_t limit = tcp ? kMaxMessage : q.udp_size;
  return {Action::answer, adapt_for_client(out, bytes.size(), info_, query, q, limit)};
}

std::size_t QueryEngine::upstream_query(std::span<const std::uint8_t> query, const Query& q,
                                        std::span<std::uint8_t> out) const noexcept {
  return build_upstream_query(query, q, 0, out);
}

std::size_t QueryEngine::finish(std::span<const std::uint8_t> query, const Query& q, bool tcp,
                                std::span<const std::uint8_t> upstream,
                                std::span<std::uint8_t> out, Clock::time_point now) {
  if (upstream.empty() || upstream.size() > out.size()) return servfail(query, q, out);
  std::memcpy(out.data(), upstream.data(), upstream.size());
  auto bytes = out.first(upstream.size());
  if (analyzer_.analyze(bytes, q.qname, q.qtype, info_) != ResponseAnalyzer::Result::ok) {
    ++counters_.upstream_errors;
    log_.event(LogLevel::warning, "upstream answer for " + std::string(q.name()) +
                                      " is malformed or does not match the question");
    return servfail(query, q, out);
  }
  // Every A/AAAA the client gets is in the set (or loopback): records that
  // will not be inserted are removed, so the client asks for their names
  // instead of connecting to an address that is refused.
  const std::size_t kept = strip_unreachable(bytes, q);
  if (kept == 0) {
    ++counters_.upstream_errors;
    return servfail(query, q, out);
  }
  bytes = bytes.first(kept);
  // Taken back (control.hpp) while the upstream was asked: the answer is
  // the denial the next query gets, and nothing is inserted.
  if (!permits(q.name())) {
    ++counters_.denied;
    return deny_response(query, q, q.name(), tcp, static_cast<std::uint8_t>(config_.deny_rcode), out);
  }
  auto held = insert(info_, [&](std::uint32_t ttl) { return clamp_ttl(ttl); }, true, q.name(), now);
  if (!held) return servfail(query, q, out);
  // Clients never see a TTL above ttl.max, nor above the time the set holds
  // the record's address: a fresh insert holds clamp(TTL) >= min(TTL,
  // ttl.max); an address left alone because it was held long enough holds
  // what the sink reported, and its record is capped at that.
  rewrite_ttls(bytes, info_, config_.ttl_max, 0);
  cap_to_held(bytes);
  if ((info_.rcode == rcode::NOERROR || info_.rcode == rcode::NXDOMAIN) && !info_.truncated) {
    // An answer without addresses (negative, or TXT/MX/… with TTL 0) is
    // kept for at least ttl.min: otherwise every repetition of such a query
    // for an allowed name would reach the upstream, and which ones were
    // repeated when would be a channel to whoever sees them there. (With
    // addresses, the set's hold already bounds how long it may be served.)
    std::uint32_t ttl = std::min({info_.min_ttl, config_.ttl_max, *held});
    if (info_.addresses.empty()) ttl = std::max(ttl, config_.ttl_min);
    cache_.store(q.qname, q.qtype, bytes, ttl, now);
  }
  std::size_t limit = tcp ? kMaxMessage : q.udp_size;
  return adapt_for_client(out, bytes.size(), info_, query, q, limit);
}

bool QueryEngine::absorb(const WireName& qname, std::uint16_t qtype,
                         std::span<const std::uint8_t> answer) {
  if (analyzer_.analyze(answer, qname, qtype, info_) != ResponseAnalyzer::Result::ok) return false;
  // No floors: the refresh exists to extend entries to a full clamp(TTL).
  std::array<char, 256> text{};
  std::size_t len = 0;
  const std::string_view name = name_to_text(qname, text, len) ? std::string_view(text.data(), len) : std::string_view{};
  if (!permits(name)) return false;  // taken back while the refresh waited for it
  return insert(info_, [&](std::uint32_t ttl) { return clamp_ttl(ttl); }, false, name, Clock::now()).has_value();
}

}  // namespace cagent::dnsguard
