#include "nft/netlink.hpp"

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <poll.h>
#include <sys/socket.h>

#include <libnftnl/common.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>

#include "nft/nft.hpp"

namespace cagent::nft {

namespace {

std::string compose(const std::string& operation, int error, const std::string& kernel_message) {
  std::string s = operation;
  s += ": ";
  s += std::strerror(error);
  if (!kernel_message.empty()) {
    s += " (";
    s += kernel_message;
    s += ")";
  }
  return s;
}

}  // namespace

NetlinkError::NetlinkError(std::string operation, int error, std::string kernel_message)
    : std::runtime_error(compose(operation, error, kernel_message)), operation_(std::move(operation)), error_(error) {}

}  // namespace cagent::nft

namespace cagent::nft::detail {

namespace {

// Room for the batch begin/end messages (nlmsghdr + nfgenmsg, aligned).
constexpr std::size_t batch_marker_room = 64;
// Receive buffer: large enough for any dump message the kernel builds (it
// sizes dump skbs after our recv buffer, capped well below this).
constexpr std::size_t rx_buffer_bytes = 64 * 1024;
// What we ask the kernel for. Batches of 10 000 IPv6 elements are ~600 KiB.
constexpr int wanted_sndbuf = 8 * 1024 * 1024;
constexpr int wanted_rcvbuf = 1024 * 1024;
// nf_tables handles a batch synchronously inside sendmsg, so every ACK is
// queued before send returns; this bound only guards against surprises.
constexpr auto ack_deadline = std::chrono::seconds(5);

// Sets a socket buffer size: the *FORCE variant ignores the sysctl cap
// (needs CAP_NET_ADMIN, which installing rules needs anyway); falls back to
// the capped one when we lack it.
void set_buffer(int fd, int force_opt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) == 0) return;
  (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

struct AckError {
  std::uint32_t seq;
  int error;
  std::string message;
};

// Reads the extended ACK attributes after an nlmsgerr (NETLINK_EXT_ACK).
std::string extack_text(const nlmsghdr* nlh) {
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  std::size_t offset = sizeof(nlmsgerr);
  if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const std::size_t payload_len = mnl_nlmsg_get_payload_len(nlh);
  if (offset >= payload_len) return {};
  struct Found {
    std::string msg;
    long offs = -1;
  } found;
  const auto* start = static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + offset;
  mnl_attr_parse_payload(
      start, payload_len - offset,
      [](const nlattr* attr, void* data) -> int {
        auto* f = static_cast<Found*>(data);
        switch (mnl_attr_get_type(attr)) {
          case NLMSGERR_ATTR_MSG:
            if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) f->msg = mnl_attr_get_str(attr);
            break;
          case NLMSGERR_ATTR_OFFS:
            if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) f->offs = mnl_attr_get_u32(attr);
            break;
          default:
            break;
        }
        return MNL_CB_OK;
      },
      &found);
  if (!found.msg.empty()) return "kernel: " + found.msg;
  if (found.offs >= 0) return "kernel rejected the attribute at byte " + std::to_string(found.offs) + " of the message";
  return {};
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

// ---------------------------------------------------------------- Batch

void Batch::begin(std::uint32_t first_seq) {
  len_ = 0;
  ops_.clear();
  seq_ = first_seq;
  begin_seq_ = seq_;
  char* p = reserve(batch_marker_room);
  nlmsghdr* nlh = nftnl_batch_begin(p, seq_++);
  len_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

void Batch::end() {
  char* p = reserve(batch_marker_room);
  nlmsghdr* nlh = nftnl_batch_end(p, seq_++);
  len_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

char* Batch::reserve(std::size_t room) {
  // Headers and attributes are 4-byte aligned; keep the buffer so.
  if (buf_.size() < len_ + room) buf_.resize(std::max(buf_.size() * 2, len_ + room));
  // Zero the room: libmnl pads attributes but leaves padding bytes as found.
  std::memset(buf_.data() + len_, 0, room);
  return buf_.data() + len_;
}

nlmsghdr* Batch::start_message(std::uint16_t type, std::uint16_t flags, std::size_t room) {
  char* p = reserve(room + sizeof(nlmsghdr) + sizeof(nfgenmsg) + 16);
  return nftnl_nlmsg_build_hdr(p, type, NFPROTO_INET, static_cast<std::uint16_t>(flags | NLM_F_ACK), seq_++);
}

void Batch::finish_message(nlmsghdr* nlh, std::string_view what, std::string_view name, std::string detail) {
  ops_.push_back(Op{nlh->nlmsg_seq, what, name, std::move(detail)});
  len_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

bool Batch::owns(std::uint32_t seq) const noexcept {
  return !ops_.empty() && seq >= ops_.front().seq && seq <= ops_.back().seq;
}

std::string Batch::describe(std::uint32_t seq) const {
  if (seq == begin_seq_) return "commit the transaction";
  for (const Op& op : ops_) {
    if (op.seq != seq) continue;
    std::string s(op.what);
    if (!op.name.empty()) {
      s += ' ';
      s += op.name;
    }
    if (!op.detail.empty()) {
      s += " [";
      s += op.detail;
      s += ']';
    }
    return s;
  }
  return "message " + std::to_string(seq);
}

// ---------------------------------------------------------------- Socket

Socket::Socket() : rx_(rx_buffer_bytes) {
  sock_.reset(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!sock_) throw NetlinkError("open netlink socket (NETLINK_NETFILTER)", errno, "");
  if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    throw NetlinkError("bind netlink socket", errno, "");
  }
  portid_ = mnl_socket_get_portid(sock_.get());
  int on = 1;
  // Extended ACKs carry the kernel's own words on what it rejected.
  // Capped ACKs keep an error from echoing a whole 60 KiB element message,
  // so the ACKs of a big batch always fit the receive buffer.
  (void)mnl_socket_setsockopt(sock_.get(), NETLINK_EXT_ACK, &on, sizeof(on));
  (void)mnl_socket_setsockopt(sock_.get(), NETLINK_CAP_ACK, &on, sizeof(on));
  const int fd = mnl_socket_get_fd(sock_.get());
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, wanted_sndbuf);
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, wanted_rcvbuf);
  int actual = 0;
  socklen_t len = sizeof(actual);
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &actual, &len) != 0) actual = 0;
  // netlink_sendmsg refuses messages longer than sk_sndbuf - 32.
  max_batch_bytes_ = actual > 4096 ? static_cast<std::size_t>(actual) - 64 : 4096;
}

void Socket::commit(const Batch& batch, std::string_view operation) {
  if (batch.size() > max_batch_bytes_) {
    throw NetlinkError(std::string(operation) + ": batch of " + std::to_string(batch.size()) +
                           " bytes exceeds the socket send buffer",
                       EMSGSIZE, "");
  }
  seq_ = batch.next_seq();
  if (mnl_socket_sendto(sock_.get(), batch.data(), batch.size()) < 0) {
    throw NetlinkError(std::string(operation) + ": send batch", errno, "");
  }

  const int fd = mnl_socket_get_fd(sock_.get());
  const std::size_t expected = batch.message_count();
  std::size_t acked = 0;
  std::vector<AckError> errors;
  const auto deadline = std::chrono::steady_clock::now() + ack_deadline;
  while (acked < expected) {
    const ssize_t n = recv(fd, rx_.data(), rx_.size(), MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        // The kernel is done with the batch (it runs inside sendmsg). After
        // an error it may not ACK the rest, so stop there.
        if (!errors.empty()) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, remaining_ms(deadline)) <= 0) break;
        continue;
      }
      // ENOBUFS: ACKs were dropped; we cannot tell what landed.
      throw NetlinkError(std::string(operation) + ": receive acknowledgements", err, "");
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(rx_.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) continue;
      const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      const std::uint32_t seq = e->msg.nlmsg_seq;
      const bool ours = batch.owns(seq);
      if (ours) ++acked;
      if (e->error != 0 && (ours || batch.is_begin(seq))) {
        errors.push_back(AckError{seq, -e->error, extack_text(nlh)});
      }
    }
  }

  if (!errors.empty()) {
    const AckError& first = errors.front();
    std::string op = std::string(operation) + ": " + batch.describe(first.seq);
    std::string msg = first.message;
    // The first error is usually the cause; later ones are often its
    // consequences, but name a few so nothing is hidden.
    constexpr std::size_t max_listed = 4;
    for (std::size_t i = 1; i < errors.size() && i <= max_listed; ++i) {
      if (!msg.empty()) msg += "; ";
      msg += "also " + batch.describe(errors[i].seq) + ": " + std::strerror(errors[i].error);
      if (!errors[i].message.empty()) msg += " (" + errors[i].message + ")";
    }
    if (errors.size() > max_listed + 1) msg += "; and " + std::to_string(errors.size() - max_listed - 1) + " more";
    throw NetlinkError(std::move(op), first.error, std::move(msg));
  }
  if (acked < expected) {
    throw NetlinkError(std::string(operation) + ": kernel acknowledged " + std::to_string(acked) + " of " +
                           std::to_string(expected) + " messages",
                       ETIMEDOUT, "");
  }
}

void Socket::dump(std::uint16_t type, std::string_view operation, const std::function<void(nlmsghdr*)>& build,
                  const std::function<void(const nlmsghdr*)>& on_message) {
  alignas(nlmsghdr) char req[8192] = {};  // header + table and set names
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req, type, NFPROTO_INET, static_cast<std::uint16_t>(NLM_F_DUMP), 0);
  build(nlh);
  request(nlh, operation, on_message);
}

void Socket::request(nlmsghdr* nlh, std::string_view operation,
                     const std::function<void(const nlmsghdr*)>& on_message) {
  const std::uint32_t seq = seq_++;
  nlh->nlmsg_seq = seq;
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
    throw NetlinkError(std::string(operation) + ": send request", errno, "");
  }
  const int fd = mnl_socket_get_fd(sock_.get());
  const auto deadline = std::chrono::steady_clock::now() + ack_deadline;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) throw NetlinkError(std::string(operation) + ": no reply", ETIMEDOUT, "");
    const ssize_t n = recv(fd, rx_.data(), rx_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw NetlinkError(std::string(operation) + ": receive", errno, "");
    }
    int len = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(rx_.data()); mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
      if (m->nlmsg_seq != seq) continue;  // a late reply to something else
      if (m->nlmsg_type == NLMSG_DONE) return;
      if (m->nlmsg_type == NLMSG_ERROR) {
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) continue;
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (e->error == 0) return;
        throw NetlinkError(std::string(operation), -e->error, extack_text(m));
      }
      on_message(m);
    }
  }
}

void Socket::dump_set_elements(const std::string& table, const std::string& set, std::string_view operation,
                               const std::function<void(nftnl_set_elem*)>& on_element) {
  dump(
      NFT_MSG_GETSETELEM, operation,
      [&](nlmsghdr* nlh) {
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
      },
      [&](const nlmsghdr* nlh) {
        SetPtr s = checked<SetPtr>(nftnl_set_alloc());
        if (nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) {
          throw NetlinkError(std::string(operation) + ": parse reply", errno, "");
        }
        nftnl_set_elem_foreach(
            s.get(),
            [](nftnl_set_elem* e, void* data) -> int {
              (*static_cast<const std::function<void(nftnl_set_elem*)>*>(data))(e);
              return 0;
            },
            const_cast<std::function<void(nftnl_set_elem*)>*>(&on_element));
      });
}

}  // namespace cagent::nft::detail
