#pragma once
// The only place that talks to the kernel. A Batch collects the messages of
// one transaction (BATCH_BEGIN … BATCH_END) in a reusable buffer and
// remembers, per sequence number, what each message does; Socket::commit()
// sends the whole batch in one sendmsg and reads every ACK, turning each
// per-message error into part of one NetlinkError.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <linux/netlink.h>

#include "nft/handles.hpp"

namespace cagent::nft::detail {

class Batch {
 public:
  Batch() = default;

  // Starts a new transaction whose messages use sequence numbers from
  // `first_seq` on. Keeps the buffer's capacity (the hot path reuses it).
  void begin(std::uint32_t first_seq);

  // Appends one nf_tables message of `type` (NFT_MSG_*) for family inet with
  // NLM_F_REQUEST | NLM_F_ACK | `flags`. `room` is an upper bound on the
  // payload `build(nlh)` writes (libnftnl/libmnl writers do not check
  // bounds). `what` and `name` describe the message for error reports and
  // must stay alive until commit() returns; `detail` is copied.
  template <typename Build>
  void add(std::uint16_t type, std::uint16_t flags, std::size_t room, std::string_view what,
           std::string_view name, Build&& build, std::string detail = {}) {
    nlmsghdr* nlh = start_message(type, flags, room);
    build(nlh);
    finish_message(nlh, what, name, std::move(detail));
  }

  void end();

  std::size_t message_count() const noexcept { return ops_.size(); }
  std::size_t size() const noexcept { return len_; }
  const char* data() const noexcept { return buf_.data(); }
  std::uint32_t next_seq() const noexcept { return seq_; }

  // What the message with sequence number `seq` did ("" if not ours).
  std::string describe(std::uint32_t seq) const;
  bool owns(std::uint32_t seq) const noexcept;
  // The kernel reports a failed commit against the BATCH_BEGIN message.
  bool is_begin(std::uint32_t seq) const noexcept { return seq == begin_seq_; }

 private:
  struct Op {
    std::uint32_t seq;
    std::string_view what;
    std::string_view name;
    std::string detail;
  };
  nlmsghdr* start_message(std::uint16_t type, std::uint16_t flags, std::size_t room);
  void finish_message(nlmsghdr* nlh, std::string_view what, std::string_view name, std::string detail);
  char* reserve(std::size_t room);

  std::vector<char> buf_;
  std::size_t len_ = 0;
  std::uint32_t seq_ = 0;
  std::uint32_t begin_seq_ = 0;
  std::vector<Op> ops_;
};

class Socket {
 public:
  Socket();

  // A batch larger than this cannot be sent in one sendmsg (socket send
  // buffer); callers split their work into several transactions.
  std::size_t max_batch_bytes() const noexcept { return max_batch_bytes_; }

  // The first sequence number of the next batch; commit() moves past the
  // numbers the batch used, so replies are never confused across requests.
  std::uint32_t next_seq() const noexcept { return seq_; }

  // Sends `batch` (already end()ed) as one transaction and waits for every
  // ACK. Throws NetlinkError naming `operation` and every failed message.
  void commit(const Batch& batch, std::string_view operation);

  // Sends one dump request of nf_tables (`build` fills the header buffer)
  // and calls `on_message` for every reply until NLMSG_DONE. Throws NetlinkError.
  void dump(std::uint16_t type, std::string_view operation, const std::function<void(nlmsghdr*)>& build,
            const std::function<void(const nlmsghdr*)>& on_message);

  // Sends one prepared request of any netfilter subsystem (ctnetlink too;
  // its sequence number is set here) and calls `on_message` for every reply
  // until NLMSG_DONE or the kernel's ACK, within the same deadline as a
  // commit. Throws NetlinkError naming `operation`, with the kernel's
  // extended ACK text.
  void request(nlmsghdr* nlh, std::string_view operation, const std::function<void(const nlmsghdr*)>& on_message);

  // Dumps the elements of set `set` of `inet table`, calling `on_element`
  // for each (valid only during the call). Throws NetlinkError.
  void dump_set_elements(const std::string& table, const std::string& set, std::string_view operation,
                         const std::function<void(nftnl_set_elem*)>& on_element);

 private:
  MnlSocketPtr sock_;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 1;
  std::size_t max_batch_bytes_ = 0;
  std::vector<char> rx_;
};

}  // namespace cagent::nft::detail
