// SetUpdater: dnsguard's per-answer path into the kernel. The common case
// (an address the kernel already holds long enough) is one hash lookup and
// no syscall; everything else becomes one transaction on a socket and a
// message buffer that live as long as the updater.

#include <endian.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "nft/handles.hpp"
#include "nft/logic.hpp"
#include "nft/netlink.hpp"
#include "nft/nft.hpp"

namespace cagent::nft {

namespace {

using namespace detail;

struct Planned {
  Address addr;
  Clock::time_point expiry;
  std::uint64_t timeout_ms;
  ElementAction action;
};

// Message header, table and set name attributes and the list nest.
std::size_t element_message_overhead(const std::string& table, const std::string& set) {
  return 64 + table.size() + set.size();
}

}  // namespace

struct SetUpdater::Impl {
  Impl(std::string t, std::string s4, std::string s6)
      : table(std::move(t)),
        set4(std::move(s4)),
        set6(std::move(s6)),
        operation("add elements to inet " + table),
        delete_op("delete elements from inet " + table),
        list_op4("list elements of inet " + table + " " + set4),
        list_op6("list elements of inet " + table + " " + set6) {
    resolve_mode();
  }

  void resolve_mode() {
    use_expiration = mode == RefreshMode::expiration ||
                     (mode == RefreshMode::automatic && kernel_updates_expiration(running_kernel()));
  }

  const std::string& set_of(Family f) const { return f == Family::v4 ? set4 : set6; }

  // Appends the messages for plan[a, a + n) (all of one family).
  void add_messages(std::size_t a, std::size_t n, Family f) {
    const std::string& set = set_of(f);
    const std::uint32_t key_len = static_cast<std::uint32_t>(address_length(f));
    const std::size_t room = element_message_overhead(table, set) + n * max_element_bytes;
    auto elements = [&](nlmsghdr* nlh, bool deleting) {
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
      nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
      for (std::size_t i = a; i < a + n; ++i) {
        const Planned& p = plan[i];
        if (deleting && p.action != ElementAction::refresh) continue;
        nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
        nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
        mnl_attr_put(nlh, NFTA_DATA_VALUE, key_len, p.addr.bytes.data());
        mnl_attr_nest_end(nlh, key);
        if (!deleting) {
          mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(p.timeout_ms));
          // Since 6.12 an explicit expiration resets an existing element's
          // remaining time (a re-add with the same timeout alone does not).
          // Expiration == timeout keeps the kernel's "expiration <= timeout".
          if (use_expiration) mnl_attr_put_u64(nlh, NFTA_SET_ELEM_EXPIRATION, htobe64(p.timeout_ms));
        }
        mnl_attr_nest_end(nlh, elem);
      }
      mnl_attr_nest_end(nlh, list);
    };
    if (!use_expiration) {
      // Older kernels ignore a re-add of an existing element: delete it and
      // add it back in the same transaction, so it is never absent from
      // the kernel's committed view. (Only for elements surely still there:
      // see replace_uncertain().)
      const bool any_refresh = std::any_of(plan.begin() + static_cast<std::ptrdiff_t>(a),
                                           plan.begin() + static_cast<std::ptrdiff_t>(a + n),
                                           [](const Planned& p) { return p.action == ElementAction::refresh; });
      if (any_refresh) {
        batch.add(NFT_MSG_DELSETELEM, 0, room, "delete elements (to refresh) from set", set,
                  [&](nlmsghdr* nlh) { elements(nlh, true); });
      }
    }
    // No NLM_F_EXCL: an element that exists is updated (>= 6.12) or left
    // alone, never an error.
    batch.add(NFT_MSG_NEWSETELEM, NLM_F_CREATE, room, "add elements to set", set,
              [&](nlmsghdr* nlh) { elements(nlh, false); });
  }

  // Sends plan[from, to) as one transaction and, once the kernel ACKed,
  // remembers the new expiries (never before: a failed transaction changes
  // nothing in the kernel, so it must change nothing here).
  void flush(std::size_t from, std::size_t to) {
    batch.end();
    sock.commit(batch, operation);
    for (std::size_t i = from; i < to; ++i) expiry.insert_or_assign(plan[i].addr, plan[i].expiry);
  }

  // Deletes one element in a transaction of its own (one ENOENT must not
  // abort the others), tolerating ENOENT: an element that is already gone
  // is what the caller wants.
  void delete_one(const Address& addr, const char* what) {
    const std::string& set = set_of(addr.family);
    const auto key_len = static_cast<std::uint32_t>(address_length(addr.family));
    Batch one;
    one.begin(sock.next_seq());
    one.add(NFT_MSG_DELSETELEM, 0, element_message_overhead(table, set) + max_element_bytes, what, set,
            [&](nlmsghdr* nlh) {
              mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
              mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
              nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
              nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
              nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
              mnl_attr_put(nlh, NFTA_DATA_VALUE, key_len, addr.bytes.data());
              mnl_attr_nest_end(nlh, key);
              mnl_attr_nest_end(nlh, elem);
              mnl_attr_nest_end(nlh, list);
            });
    one.end();
    try {
      sock.commit(one, delete_op);
    } catch (const NetlinkError& e) {
      if (e.error() != ENOENT) throw;
    }
  }

  // ElementAction::replace on kernels before 6.12: the element is at its
  // kernel expiry, present or not. Each is deleted on its own (ENOENT: it
  // already expired, the add below creates it); the main batch then adds
  // it. No promise rests on it any more, so the moment without it refuses
  // nothing a client was told it could reach.
  void replace_uncertain() {
    for (Planned& p : plan) {
      if (p.action != ElementAction::replace) continue;
      p.action = ElementAction::add;
      if (use_expiration) continue;  // >= 6.12: an add with an expiration sets it either way
      delete_one(p.addr, "delete element (at its expiry) from set");
    }
  }

  void send_plan() {
    replace_uncertain();
    // Messages are per set: v4 first, then v6.
    const auto v6_begin = std::stable_partition(plan.begin(), plan.end(),
                                                [](const Planned& p) { return p.addr.family == Family::v4; });
    const std::size_t n4 = static_cast<std::size_t>(v6_begin - plan.begin());
    const std::size_t per_element = max_element_bytes * (use_expiration ? 1 : 2);
    const std::size_t limit = sock.max_batch_bytes();
    batch.begin(sock.next_seq());
    std::size_t pending_from = 0;
    std::size_t i = 0;
    for (const Family f : {Family::v4, Family::v6}) {
      const std::size_t count = f == Family::v4 ? n4 : plan.size() - n4;
      for (const std::size_t n : split_counts(count, max_elements_per_message)) {
        const std::size_t estimate = 2 * element_message_overhead(table, set_of(f)) + n * per_element + 64;
        if (batch.message_count() > 0 && batch.size() + estimate > limit) {
          // Too big for one sendmsg: commit what we have as its own
          // transaction (only when the socket buffer could not be raised).
          flush(pending_from, i);
          pending_from = i;
          batch.begin(sock.next_seq());
        }
        add_messages(i, n, f);
        i += n;
      }
    }
    flush(pending_from, plan.size());
  }

  void prune(Clock::time_point now) {
    if (expiry.size() < prune_at) return;
    // Only entries the kernel has surely dropped: forgetting one it may
    // still hold would turn its next refresh into an (ignored) re-add.
    std::erase_if(expiry, [now](const auto& kv) { return kv.second + set_grace + expiry_uncertainty < now; });
    prune_at = std::max<std::size_t>(min_prune_at, 2 * expiry.size());
  }

  static constexpr std::size_t min_prune_at = 4096;

  std::string table;
  std::string set4;
  std::string set6;
  std::string operation;
  std::string delete_op;
  std::string list_op4;
  std::string list_op6;
  Socket sock;
  Batch batch;
  RefreshMode mode = RefreshMode::automatic;
  bool use_expiration = false;
  // Per address: the expiry we last promised; the kernel's own is set_grace
  // later (give or take a jiffy: it counts from the moment it committed).
  std::unordered_map<Address, Clock::time_point, AddressHash> expiry;
  std::size_t prune_at = min_prune_at;
  // Reused between calls so the per-answer path does not allocate.
  std::vector<Planned> plan;
  std::unordered_map<Address, std::size_t, AddressHash> seen;
};

SetUpdater::SetUpdater(std::string table, std::string set4, std::string set6) {
  if (table.empty() || set4.empty() || set6.empty()) {
    throw std::invalid_argument("SetUpdater: table and set names must not be empty");
  }
  impl_ = std::make_unique<Impl>(std::move(table), std::move(set4), std::move(set6));
  // Best effort: without the sets there is nothing to learn, and add()
  // reports any real problem with them.
  const Clock::time_point now = Clock::now();
  for (const Family f : {Family::v4, Family::v6}) {
    try {
      for (const ListedElement& e : list(f)) {
        if (e.expires.count() > 0) impl_->expiry.insert_or_assign(e.addr, now + e.expires - set_grace);
      }
    } catch (const NetlinkError&) {
    }
  }
}

SetUpdater::~SetUpdater() = default;

void SetUpdater::set_refresh_mode(RefreshMode mode) noexcept {
  impl_->mode = mode;
  impl_->resolve_mode();
}


void SetUpdater::add(std::span<const SetElement> elements) { add(elements, {}); }

void SetUpdater::add(std::span<const SetElement> elements, std::span<std::chrono::milliseconds> held) {
  if (!held.empty() && held.size() != elements.size()) {
    throw std::invalid_argument("SetUpdater::add: held has " + std::to_string(held.size()) +
                                " slots for " + std::to_string(elements.size()) + " elements");
  }
  // Validate everything before touching anything: a timeout of 0 would
  // make the kernel keep the address forever.
  for (const SetElement& e : elements) {
    if (e.timeout.count() <= 0) {
      throw std::invalid_argument("SetUpdater::add: timeout for " + to_string(e.addr) +
                                  " must be > 0 (0 would never expire)");
    }
  }
  Impl& im = *impl_;
  const Clock::time_point now = Clock::now();
  im.plan.clear();
  const bool dedupe = elements.size() > 1;
  if (dedupe) im.seen.clear();
  for (const SetElement& e : elements) {
    const Clock::time_point requested = now + e.timeout;
    // A floor above the timeout would ask for more than we send: cap it.
    const Clock::time_point floor =
        e.min_timeout.count() > 0 && e.min_timeout < e.timeout ? now + e.min_timeout : requested;
    const auto it = im.expiry.find(e.addr);
    const ElementAction action = decide(it == im.expiry.end() ? nullptr : &it->second, floor, requested, now);
    if (action == ElementAction::skip) continue;
    // The kernel holds it set_grace longer than promised.
    const auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(e.timeout + set_grace).count());
    if (dedupe) {
      const auto [slot, fresh] = im.seen.try_emplace(e.addr, im.plan.size());
      if (!fresh) {
        // The same address twice in one call: keep the later expiry.
        Planned& p = im.plan[slot->second];
        if (requested > p.expiry) {
          p.expiry = requested;
          p.timeout_ms = ms;
        }
        continue;
      }
    }
    im.plan.push_back(Planned{e.addr, requested, ms, action});
  }
  if (!im.plan.empty()) {
    im.send_plan();
    im.prune(now);
  }
  if (held.empty()) return;
  // After the ACK every element's remembered promise is what may be relied
  // on (sent: now + timeout; skipped: the earlier, still later one).
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const auto it = im.expiry.find(elements[i].addr);
    held[i] = it == im.expiry.end()
                  ? std::chrono::milliseconds(0)
                  : std::max(std::chrono::milliseconds(0),
                             std::chrono::duration_cast<std::chrono::milliseconds>(it->second - now));
  }
}

void SetUpdater::remove(std::span<const Address> addresses) {
  Impl& im = *impl_;
  for (const Address& a : addresses) {
    im.delete_one(a, "delete element (taken back) from set");
    // Only after the kernel let go: a later add() must add it anew.
    im.expiry.erase(a);
  }
}

std::vector<ListedElement> SetUpdater::list(Family family) const {
  Impl& im = *impl_;
  const std::string& set = im.set_of(family);
  const std::string& operation = family == Family::v4 ? im.list_op4 : im.list_op6;
  std::vector<ListedElement> out;
  im.sock.dump_set_elements(im.table, set, operation, [&](nftnl_set_elem* e) {
    ListedElement le;
    le.addr.family = family;
    std::uint32_t len = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (key == nullptr || len != address_length(family)) return;
    std::memcpy(le.addr.bytes.data(), key, len);
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) {
      le.timeout = std::chrono::milliseconds(nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT));
    }
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION)) {
      le.expires = std::chrono::milliseconds(nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION));
    }
    out.push_back(le);
  });
  return out;
}

}  // namespace cagent::nft
