#pragma once
// Owning handles for the C objects of libmnl and libnftnl. Every object this
// module allocates lives in one of these from the moment it is created; a
// handle given to a container object (nftnl_rule_add_expr, nftnl_set_elem_add)
// is handed over with .release() at that call, so ownership stays visible.

#include <memory>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

namespace cagent::nft::detail {

struct MnlSocketDeleter {
  void operator()(mnl_socket* s) const noexcept { mnl_socket_close(s); }
};
struct TableDeleter {
  void operator()(nftnl_table* t) const noexcept { nftnl_table_free(t); }
};
struct ChainDeleter {
  void operator()(nftnl_chain* c) const noexcept { nftnl_chain_free(c); }
};
struct RuleDeleter {
  void operator()(nftnl_rule* r) const noexcept { nftnl_rule_free(r); }
};
struct ExprDeleter {
  void operator()(nftnl_expr* e) const noexcept { nftnl_expr_free(e); }
};
struct SetDeleter {
  void operator()(nftnl_set* s) const noexcept { nftnl_set_free(s); }
};
struct SetElemDeleter {
  void operator()(nftnl_set_elem* e) const noexcept { nftnl_set_elem_free(e); }
};
struct ObjDeleter {
  void operator()(nftnl_obj* o) const noexcept { nftnl_obj_free(o); }
};
struct UdataBufDeleter {
  void operator()(nftnl_udata_buf* b) const noexcept { nftnl_udata_buf_free(b); }
};

using MnlSocketPtr = std::unique_ptr<mnl_socket, MnlSocketDeleter>;
using TablePtr = std::unique_ptr<nftnl_table, TableDeleter>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainDeleter>;
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;
using ExprPtr = std::unique_ptr<nftnl_expr, ExprDeleter>;
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;
using SetElemPtr = std::unique_ptr<nftnl_set_elem, SetElemDeleter>;
using ObjPtr = std::unique_ptr<nftnl_obj, ObjDeleter>;
using UdataBufPtr = std::unique_ptr<nftnl_udata_buf, UdataBufDeleter>;

// libnftnl allocators return nullptr only when malloc fails.
template <typename Ptr, typename Raw>
Ptr checked(Raw* raw) {
  if (raw == nullptr) throw std::bad_alloc();
  return Ptr(raw);
}

}  // namespace cagent::nft::detail
