#include "launcher/host/listing_cache.hpp"

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "launcher/host/paths.hpp"
#include "launcher/host/sha256.hpp"
#include "dnsguard/posix.hpp"

namespace cagent::launcher::host {
namespace fs = std::filesystem;
namespace {

// The file: a text header, then one binary record per directory (native
// byte order: it never leaves this machine), then "end\n".
//
//   cagent-listings 1\n
//   uid <euid>\n
//   groups <egid> <supplementary groups, ascending>\n
//   root <bytes>\n<root path>\n
//   dirs <count>\n
//   <count> × { u32 rel size, rel, u64 dev, u64 ino, i64 ctime s, i64 ctime ns, u32 listing size, listing }
//   end\n
//
// A listing is its entries in the kernel's order, each a type letter, the
// name and a NUL.
constexpr std::string_view kMagic = "cagent-listings 1\n";
// A workspace of a few million files; beyond that nothing is kept (loading
// would cost more than it saves).
constexpr std::size_t kMaxFileBytes = 256u << 20;

char type_letter(fs::file_type type) {
  switch (type) {
    case fs::file_type::regular: return 'f';
    case fs::file_type::directory: return 'd';
    case fs::file_type::symlink: return 'l';
    case fs::file_type::block: return 'b';
    case fs::file_type::character: return 'c';
    case fs::file_type::fifo: return 'p';
    case fs::file_type::socket: return 's';
    default: return 'u';
  }
}

std::optional<fs::file_type> type_of_letter(char c) {
  switch (c) {
    case 'f': return fs::file_type::regular;
    case 'd': return fs::file_type::directory;
    case 'l': return fs::file_type::symlink;
    case 'b': return fs::file_type::block;
    case 'c': return fs::file_type::character;
    case 'p': return fs::file_type::fifo;
    case 's': return fs::file_type::socket;
    case 'u': return fs::file_type::unknown;
    default: return std::nullopt;
  }
}

// Who lists: a listing may fail for want of permission, so one made with
// other credentials is not this user's to reuse.
std::string credentials_header() {
  std::string out = "uid " + std::to_string(::geteuid()) + "\ngroups " + std::to_string(::getegid());
  const int n = ::getgroups(0, nullptr);
  std::vector<gid_t> groups(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (n > 0 && ::getgroups(n, groups.data()) == n) {
    std::sort(groups.begin(), groups.end());
    for (gid_t g : groups) out += " " + std::to_string(g);
  }
  return out + "\n";
}

std::string header(const fs::path& root) {
  return std::string(kMagic) + credentials_header() + "root " + std::to_string(root.native().size()) + "\n" +
         root.native() + "\n";
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Reads what put() wrote, never past the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool get(T& value) {
    if (data_.size() - pos_ < sizeof value) return false;
    std::memcpy(&value, data_.data() + pos_, sizeof value);
    pos_ += sizeof value;
    return true;
  }
  bool bytes(std::size_t n, std::string_view& out) {
    if (data_.size() - pos_ < n) return false;
    out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool line(std::string_view& out) {
    const std::size_t eol = data_.find('\n', pos_);
    if (eol == std::string_view::npos) return false;
    out = data_.substr(pos_, eol - pos_);
    pos_ = eol + 1;
    return true;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

bool before(std::int64_t sec, std::int64_t nsec, const timespec& t) {
  return sec < t.tv_sec || (sec == t.tv_sec && nsec < t.tv_nsec);
}

// The whole file, if it is a regular file of this user no larger than the
// limit, opened without following a symlink.
std::optional<std::string> read_own_file(const fs::path& file) {
  const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || st.st_size < 0 ||
      static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
    return std::nullopt;
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // shorter than it said: being replaced
    got += static_cast<std::size_t>(n);
  }
  return out;
}

}  // namespace

DirStamp stamp_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::int64_t>(st.st_ctim.tv_sec), static_cast<std::int64_t>(st.st_ctim.tv_nsec)};
}

bool keeps_ctime(std::int64_t fs_type) {
  // linux/magic.h
  switch (static_cast<std::uint32_t>(fs_type)) {
    case 0xEF53u:      // ext2, ext3, ext4
    case 0x58465342u:  // xfs
    case 0x9123683Eu:  // btrfs
    case 0x01021994u:  // tmpfs
    case 0xF2F52010u:  // f2fs
      return true;
    default:
      return false;
  }
}

ListingCache::ListingCache(timespec trusted_before) : trusted_before_(trusted_before) {}

timespec ListingCache::horizon_now() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  now.tv_sec -= kRacyMarginSeconds;
  return now;
}

bool ListingCache::load(const fs::path& file, const fs::path& root) {
  std::optional<std::string> text = read_own_file(file);
  if (!text) return false;
  const std::string expected = header(root);
  if (text->compare(0, expected.size(), expected) != 0) return false;
  Reader in(std::string_view(*text).substr(expected.size()));
  std::string_view line;
  std::uint64_t count = 0;
  if (!in.line(line) || !line.starts_with("dirs ")) return false;
  for (char c : line.substr(5)) {
    if (c < '0' || c > '9' || count > (1u << 30)) return false;
    count = count * 10 + static_cast<std::uint64_t>(c - '0');
  }
  std::unordered_map<std::string_view, Kept> dirs;
  dirs.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t rel_size = 0, listing_size = 0;
    std::string_view rel, listing;
    DirStamp s;
    if (!in.get(rel_size) || !in.bytes(rel_size, rel) || !in.get(s.dev) || !in.get(s.ino) || !in.get(s.ctime_sec) ||
        !in.get(s.ctime_nsec) || !in.get(listing_size) || !in.bytes(listing_size, listing)) {
      return false;
    }
    // Written only when trusted then; the horizon of this walk is later.
    if (!dirs.try_emplace(rel, s, listing).second) return false;
  }
  if (!in.line(line) || line != "end" || !in.at_end()) return false;
  // The views point into the text: it moves in with them (a std::string's
  // heap buffer stays where it is when the string is moved).
  file_ = std::move(*text);
  dirs_ = std::move(dirs);
  return true;
}

bool ListingCache::knows(std::string_view rel) const { return dirs_.find(rel) != dirs_.end(); }

bool ListingCache::reuse(std::string_view rel, const DirStamp& stamp, std::vector<ListedEntry>& out) const {
  const auto it = dirs_.find(rel);
  if (it == dirs_.end() || !(it->second.stamp == stamp)) return false;
  // Decoded defensively, though only this user writes the file: anything
  // but what save() writes is no listing at all.
  const std::string_view listing = it->second.listing;
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < listing.size();) {
    const std::optional<fs::file_type> type = type_of_letter(listing[pos]);
    const std::size_t end = listing.find('\0', pos + 1);
    if (!type || end == std::string_view::npos || end == pos + 1) return false;
    const std::string_view name = listing.substr(pos + 1, end - pos - 1);
    if (name.find('/') != std::string_view::npos || name == "." || name == "..") return false;
    if (n == out.size()) out.emplace_back();
    out[n].name.assign(name);  // (reuses the string's buffer from the last directory)
    out[n].type = *type;
    ++n;
    pos = end + 1;
  }
  out.resize(n);
  it->second.used.store(true, std::memory_order_relaxed);
  reused_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ListingCache::record(std::string_view rel, const DirStamp& stamp, int dir_fd,
                          const std::vector<ListedEntry>& entries) {
  if (!before(stamp.ctime_sec, stamp.ctime_nsec, trusted_before_)) {
    const std::lock_guard lock(mutex_);
    ++counts_.too_new;
    return;
  }
  std::string listing;
  for (const ListedEntry& e : entries) {
    listing += type_letter(e.type);
    listing += e.name;
    listing += '\0';
  }
  const std::lock_guard lock(mutex_);
  auto [device, unseen] = device_ok_.try_emplace(stamp.dev, false);
  if (unseen) {
    struct statfs fs {};
    device->second = ::fstatfs(dir_fd, &fs) == 0 && keeps_ctime(static_cast<std::int64_t>(fs.f_type));
  }
  if (!device->second) {
    ++counts_.untrusted;
    return;
  }
  const std::string& key = owned_.emplace_back(rel);
  const std::string& kept_listing = owned_.emplace_back(std::move(listing));
  Kept& kept = fresh_kept_.emplace_back(stamp, kept_listing);
  fresh_.emplace_back(key, &kept);
  ++counts_.recorded;
}

bool ListingCache::settle() {
  const std::lock_guard lock(mutex_);
  bool changed = !fresh_.empty();
  std::unordered_map<std::string_view, Kept> kept;
  kept.reserve(dirs_.size() + fresh_.size());
  for (const auto& [rel, k] : dirs_) {
    if (k.used.load(std::memory_order_relaxed)) {
      kept.try_emplace(rel, k.stamp, k.listing);
    } else {
      changed = true;  // gone, changed or no longer walked
    }
  }
  // A directory both loaded and listed afresh was not reused: the fresh
  // listing replaces the loaded one.
  for (const auto& [rel, k] : fresh_) {
    kept.erase(rel);
    kept.try_emplace(rel, k->stamp, k->listing);
  }
  dirs_ = std::move(kept);
  counts_.reused = reused_.load(std::memory_order_relaxed);
  reused_.store(0, std::memory_order_relaxed);
  fresh_.clear();  // (their strings stay in owned_: dirs_ points into them)
  return changed;
}

void ListingCache::save(const fs::path& file, const fs::path& root) const {
  std::string out = header(root);
  std::size_t bytes = out.size();
  for (const auto& [rel, k] : dirs_) bytes += rel.size() + k.listing.size() + 48;
  if (bytes > kMaxFileBytes) throw std::runtime_error("the workspace is too large to keep its listings");
  out.reserve(bytes + 32);
  out += "dirs " + std::to_string(dirs_.size()) + "\n";
  for (const auto& [rel, k] : dirs_) {
    put(out, static_cast<std::uint32_t>(rel.size()));
    out += rel;
    put(out, k.stamp.dev);
    put(out, k.stamp.ino);
    put(out, k.stamp.ctime_sec);
    put(out, k.stamp.ctime_nsec);
    put(out, static_cast<std::uint32_t>(k.listing.size()));
    out += k.listing;
  }
  out += "end\n";
  std::error_code ec;
  if (fs::create_directories(file.parent_path(), ec)) fs::permissions(file.parent_path(), fs::perms::owner_all, ec);
  write_file(file, out, 0600);
}

ListingCache::Counts ListingCache::counts() const {
  const std::lock_guard lock(mutex_);
  Counts c = counts_;
  if (const std::size_t now = reused_.load(std::memory_order_relaxed); now != 0) c.reused = now;
  return c;
}

void prune_listing_files(const fs::path& dir, std::size_t keep) {
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::error_code entry_ec;
    if (!e.is_regular_file(entry_ec)) continue;
    const fs::file_time_type when = e.last_write_time(entry_ec);
    if (!entry_ec) files.emplace_back(when, e.path());
  }
  if (files.size() <= keep) return;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = keep; i < files.size(); ++i) fs::remove(files[i].second, ec);
}

fs::path listing_cache_file(const fs::path& cagent_home, const fs::path& root) {
  return cagent_home / "listings" / sha256_hex(root.native()).substr(0, 32);
}

}  // namespace cagent::launcher::host
