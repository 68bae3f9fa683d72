#include "launcher/host/ca_bundle.hpp"

#include <algorithm>
#include <set>
#include <system_error>

#include "launcher/host/paths.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

class Collector {
 public:
  void add_file(const fs::path& file, const std::string& where) {
    std::string text;
    try {
      text = read_file(file);
    } catch (const std::exception& e) {
      throw CaError(where + "CA certificate file " + file.string() + " is unreadable: " + e.what());
    }
    const std::vector<std::string> certs = extract_pem_certificates(text);
    if (certs.empty()) {
      throw CaError(where + "CA certificate file " + file.string() +
                    " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    for (const std::string& c : certs) {
      if (seen_.insert(c).second) {
        bundle_.pem += c;
        ++bundle_.count;
      }
    }
  }

  void add_directory(const fs::path& dir, const std::string& where) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string ext = it->path().extension().string();
      // Like c_rehash: certificate files by extension; hash links (.0) and
      // other files in e.g. /etc/ssl/certs are skipped.
      if ((ext == ".pem" || ext == ".crt") && it->is_regular_file()) files.push_back(it->path());
    }
    if (ec) throw CaError(where + "cannot read CA directory " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      throw CaError(where + "CA directory " + dir.string() + " has no .pem or .crt files");
    }
    for (const fs::path& f : files) add_file(f, where);
  }

  CaBundle take() { return std::move(bundle_); }

 private:
  std::set<std::string> seen_;
  CaBundle bundle_;
};

}  // namespace

std::vector<fs::path> default_system_bundles() {
  return {"/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Alpine
          "/etc/pki/tls/certs/ca-bundle.crt",     // Fedora, RHEL
          "/etc/ssl/ca-bundle.pem",               // openSUSE
          "/etc/ssl/cert.pem"};                   // macOS, Arch
}

std::vector<std::string> extract_pem_certificates(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t begin = text.find(kBegin, pos);
    if (begin == std::string_view::npos) break;
    const std::size_t end = text.find(kEnd, begin + kBegin.size());
    if (end == std::string_view::npos) break;  // truncated block: not a certificate
    const std::string_view body = text.substr(begin + kBegin.size(), end - begin - kBegin.size());
    std::string b64;
    bool valid = true;
    for (char c : body) {
      if (c == '\r' || c == '\n' || c == ' ' || c == '\t') continue;
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '/' || c == '=';
      valid = valid && ok;
      b64.push_back(c);
    }
    if (valid && !b64.empty()) {
      std::string cert(kBegin);
      cert += "\n";
      for (std::size_t i = 0; i < b64.size(); i += 64) cert += b64.substr(i, 64) + "\n";
      cert += std::string(kEnd) + "\n";
      out.push_back(std::move(cert));
    }
    pos = end + kEnd.size();
  }
  return out;
}

CaBundle collect_ca_bundle(const std::vector<CaSource>& sources,
                           const std::vector<fs::path>& system_bundles) {
  Collector collector;
  for (const CaSource& src : sources) {
    const std::string where = src.pos.str() + ": ";
    if (src.system) {
      const auto found = std::find_if(system_bundles.begin(), system_bundles.end(), [](const fs::path& p) {
        std::error_code ec;
        return fs::is_regular_file(p, ec);
      });
      if (found == system_bundles.end()) {
        throw CaError(where + "'system': no system CA bundle found on this host");
      }
      collector.add_file(*found, where);
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(src.path, ec)) {
      collector.add_directory(src.path, where);
    } else {
      collector.add_file(src.path, where);
    }
  }
  return collector.take();
}

}  // namespace cagent::launcher::host
