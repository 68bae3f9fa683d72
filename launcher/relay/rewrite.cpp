#include "launcher/relay/rewrite.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace cagent::relay {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept { return a.size() == b.size() && lowered(a) == lowered(b); }

bool belongs_to(const Secret& secret, std::string_view host) {
  return std::find(secret.hosts.begin(), secret.hosts.end(), host) != secret.hosts.end();
}

// Replaces every placeholder in `text`. Returns false (and fills the
// verdict's refusal) when one belongs to a secret this host must not get.
bool replace_in(std::string& text, std::string_view host, const std::vector<Secret>& secrets, Verdict& verdict) {
  for (const Secret& s : secrets) {
    if (s.placeholder.empty()) continue;
    std::size_t at = text.find(s.placeholder);
    if (at == std::string::npos) continue;
    if (!belongs_to(s, host)) {
      verdict.reason = "secret " + s.name + " sent to " + std::string(host);
      verdict.secret = s.name;
      verdict.host = std::string(host);
      return false;
    }
    while (at != std::string::npos) {
      text.replace(at, s.placeholder.size(), s.value);
      at = text.find(s.placeholder, at + s.value.size());
    }
    if (std::find(verdict.used.begin(), verdict.used.end(), s.name) == verdict.used.end()) verdict.used.push_back(s.name);
  }
  return true;
}

// "Basic <b64>" (scheme case-insensitive): the credentials, decoded.
std::optional<std::string> basic_credentials(std::string_view value) {
  if (value.size() < 6 || !iequals(value.substr(0, 6), "basic ")) return std::nullopt;
  std::string_view b64 = value.substr(6);
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  return base64_decode(b64);
}

bool is_authorization(std::string_view name) {
  return iequals(name, "authorization") || iequals(name, "proxy-authorization");
}

Verdict refuse(std::string reason) {
  Verdict v;
  v.reason = std::move(reason);
  return v;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 64 * 1024) return std::nullopt;
  const bool alphabet = std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
  });
  if (!alphabet) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes: take them back off.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t pad = 0; pad < 2 && text[text.size() - 1 - pad] == '='; ++pad) --size;
  out.resize(size);
  return out;
}

std::optional<std::string> host_of_authority(std::string_view authority) {
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  if (host.front() == '[') return std::nullopt;  // an IP literal is never a secret's host name
  const auto colon = host.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port != "443") return std::nullopt;
    host = host.substr(0, colon);
  }
  if (host.empty() || host.back() == '.') return std::nullopt;
  const bool name_chars = std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if (!name_chars) return std::nullopt;
  return lowered(host);
}

Verdict check_and_rewrite(const RequestHead& head, std::string_view server_name, const std::vector<Secret>& secrets) {
  if (iequals(head.method, "CONNECT")) return refuse("CONNECT is not relayed");
  if (head.find("upgrade")) return refuse("protocol upgrades are not relayed on a secret host's connection");
  const auto hosts = head.all("host");
  if (hosts.size() != 1) return refuse(hosts.empty() ? "a request without Host" : "more than one Host header");
  const auto host = host_of_authority(hosts.front());
  if (!host) return refuse("a malformed Host");
  if (*host != server_name) {
    Verdict v = refuse("a request for " + *host + " on " + std::string(server_name) + "'s connection");
    v.host = *host;
    // Say so when it carried a placeholder: that is the attempt worth recording.
    for (const Secret& s : secrets) {
      const bool carried = std::any_of(head.headers.begin(), head.headers.end(), [&](const Header& h) {
        const auto decoded = is_authorization(h.name) ? basic_credentials(h.value) : std::nullopt;
        return h.value.find(s.placeholder) != std::string::npos ||
               (decoded && decoded->find(s.placeholder) != std::string::npos);
      });
      if (!s.placeholder.empty() && carried) {
        v.reason = "secret " + s.name + " sent to " + *host;
        v.secret = s.name;
        break;
      }
    }
    return v;
  }
  // An absolute-form target names its own authority: it must agree.
  if (head.target.find("://") != std::string::npos) {
    const std::string_view t = head.target;
    const auto scheme_end = t.find("://");
    const std::string_view rest = t.substr(scheme_end + 3);
    const auto target_host = host_of_authority(rest.substr(0, rest.find('/')));
    if (!iequals(t.substr(0, scheme_end), "https") || !target_host || *target_host != server_name) {
      return refuse("a request target for another site on " + std::string(server_name) + "'s connection");
    }
  }

  Verdict verdict;
  RequestHead out = head;
  for (Header& h : out.headers) {
    if (is_authorization(h.name)) {
      if (auto decoded = basic_credentials(h.value)) {
        std::string credentials = *decoded;
        if (!replace_in(credentials, server_name, secrets, verdict)) return verdict;
        if (credentials != *decoded) h.value = "Basic " + base64_encode(credentials);
        continue;
      }
    }
    if (!replace_in(h.value, server_name, secrets, verdict)) return verdict;
  }
  // A placeholder in the target or the name of a header is not replaced,
  // but one that belongs elsewhere is still refused: it was meant to go there.
  for (const Secret& s : secrets) {
    if (s.placeholder.empty() || belongs_to(s, server_name)) continue;
    bool seen = head.target.find(s.placeholder) != std::string::npos;
    for (const Header& h : head.headers) seen = seen || h.name.find(s.placeholder) != std::string::npos;
    if (seen) {
      Verdict v = refuse("secret " + s.name + " sent to " + std::string(server_name));
      v.secret = s.name;
      v.host = std::string(server_name);
      return v;
    }
  }
  // A value put in must still be a valid field value (no CR/LF smuggled in
  // through a secret's source, which the host checked too).
  for (const Header& h : out.headers) {
    if (h.value.find_first_of("\r\n") != std::string::npos) return refuse("a secret value with a line break");
  }
  verdict.forward = true;
  verdict.head = out.serialize();
  return verdict;
}

}  // namespace cagent::relay
