#pragma once
// Which answered addresses may enter the nft sets. An allowed name that
// resolves to a loopback, link-local, private, CGNAT, ULA, metadata,
// multicast or unspecified address must not open that destination (DNS
// rebinding into the host's or cloud's internal network); the only way in
// is an explicit `allow_cidrs` entry covering it.

#include <span>

#include "dnsguard/ip.hpp"

namespace cagent::dnsguard {

bool is_special_purpose(const IpAddress& addr) noexcept;

// 127.0.0.0/8 or ::1: inside the cage, reachable without the set.
bool is_loopback(const IpAddress& addr) noexcept;

// Not special-purpose, or covered by one of `allow_cidrs`.
bool may_insert(const IpAddress& addr, std::span<const Cidr> allow_cidrs) noexcept;

}  // namespace cagent::dnsguard
