#include "launcher/host/listing_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
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
//   cagent-listings 2\n
//   uid <euid>\n
//   groups <egid> <supplementary groups, ascending>\n
//   root <bytes>\n<root path>\n
//   dirs <count>\n
//   <count> × { u32 rel size, rel, u64 dev, u64 ino, i64 ctime s, i64 ctime ns, u64 mount, u32 listing size, listing }
//   end\n
//
// A listing is its entries in the kernel's order, each a type letter, the
// name and a NUL.
constexpr std::string_view kMagic = "cagent-listings 2\n";
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

}  // namespace

ListingCache::Mapping::~Mapping() {
  if (data != nullptr) ::munmap(data, size);
}

namespace {

}  // namespace

// The whole file mapped read-only, if it is a regular file of this user,
// not writable by others, no larger than the limit, opened without
// following a symlink. (save() replaces the file by a rename, never in
// place, so what is mapped does not change under the mapping.)
std::unique_ptr<ListingCache::Mapping> ListingCache::map_own_file(const fs::path& file) {
  const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return nullptr;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || st.st_size <= 0 ||
      static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
    return nullptr;
  }
  auto m = std::make_unique<Mapping>();
  void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
  if (p == MAP_FAILED) return nullptr;
  m->data = p;
  m->size = static_cast<std::size_t>(st.st_size);
  return m;
}

std::optional<DirStamp> directory_stamp(int dir_fd, const char* path, int flags) {
  // linux/stat.h (which glibc's sys/stat.h brings in for struct statx): the
  // mount id (5.8) and the unique one (6.8, not in every header yet).
  constexpr unsigned kStatxMntId = 0x1000U;
  constexpr unsigned kStatxMntIdUnique = 0x4000U;
  struct statx stx {};
  if (::statx(dir_fd, path, flags | AT_STATX_SYNC_AS_STAT,
              STATX_TYPE | STATX_INO | STATX_CTIME | kStatxMntIdUnique, &stx) != 0 ||
      (stx.stx_mask & (STATX_TYPE | STATX_INO | STATX_CTIME)) != (STATX_TYPE | STATX_INO | STATX_CTIME) ||
      !S_ISDIR(stx.stx_mode) || (stx.stx_attributes & STATX_ATTR_ENCRYPTED) != 0) {
    return std::nullopt;
  }
  DirStamp s;
  s.dev = (static_cast<std::uint64_t>(stx.stx_dev_major) << 32) | stx.stx_dev_minor;
  s.ino = stx.stx_ino;
  s.ctime_sec = stx.stx_ctime.tv_sec;
  s.ctime_nsec = stx.stx_ctime.tv_nsec;
  if ((stx.stx_mask & (kStatxMntId | kStatxMntIdUnique)) != 0) s.mount = stx.stx_mnt_id;
  return s;
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
  std::unique_ptr<Mapping> mapped = map_own_file(file);
  if (!mapped) return false;
  const std::string_view all(static_cast<const char*>(mapped->data), mapped->size);
  const std::string expected = header(root);
  if (!all.starts_with(expected)) return false;
  Reader in(all.substr(expected.size()));
  std::string_view line;
  std::uint64_t count = 0;
  if (!in.line(line) || !line.starts_with("dirs ")) return false;
  for (char c : line.substr(5)) {
    if (c < '0' || c > '9' || count > (1u << 30)) return false;
    count = count * 10 + static_cast<std::uint64_t>(c - '0');
  }
  // Each record takes at least kMinRecord bytes: a count the file cannot
  // hold is no file save() wrote (and must not size anything).
  constexpr std::size_t kMinRecord = 4 + 5 * 8 + 4;
  if (count > mapped->size / kMinRecord) return false;
  std::deque<Kept> loaded;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t rel_size = 0, listing_size = 0;
    Kept& k = loaded.emplace_back();
    if (!in.get(rel_size) || !in.bytes(rel_size, k.rel) || !in.get(k.stamp.dev) || !in.get(k.stamp.ino) ||
        !in.get(k.stamp.ctime_sec) || !in.get(k.stamp.ctime_nsec) || !in.get(k.stamp.mount) || !in.get(listing_size) ||
        !in.bytes(listing_size, k.listing)) {
      return false;
    }
    // (Written only when trusted then; the horizon of this walk is later.)
  }
  if (!in.line(line) || line != "end" || !in.at_end()) return false;
  std::vector<const Kept*> all_kept;
  all_kept.reserve(loaded.size());
  for (const Kept& k : loaded) all_kept.push_back(&k);
  index(std::move(all_kept));
  if (count_ != loaded.size()) {  // a path twice: not what save() writes
    index({});
    return false;
  }
  file_ = std::move(mapped);
  return true;
}

void ListingCache::index(std::vector<const Kept*> from) {
  // Each path once (the first): save() never writes one twice.
  std::size_t size = 16;
  while (size < from.size() * 2) size *= 2;
  std::vector<std::uint32_t> slots(size, 0);
  auto kept = std::make_unique<Kept[]>(from.size());
  std::size_t n = 0;
  const std::hash<std::string_view> hash;
  for (const Kept* k : from) {
    std::size_t i = hash(k->rel) & (size - 1);
    bool twice = false;
    while (slots[i] != 0) {
      if (kept[slots[i] - 1].rel == k->rel) {
        twice = true;
        break;
      }
      i = (i + 1) & (size - 1);
    }
    if (twice) continue;
    kept[n].stamp = k->stamp;
    kept[n].rel = k->rel;
    kept[n].listing = k->listing;
    slots[i] = static_cast<std::uint32_t>(++n);
  }
  kept_ = std::move(kept);
  count_ = n;
  slots_ = std::move(slots);
}

const ListingCache::Kept* ListingCache::find(std::string_view rel) const {
  if (count_ == 0) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = std::hash<std::string_view>{}(rel) & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const Kept& k = kept_[slots_[i] - 1];
    if (k.rel == rel) return &k;
  }
  return nullptr;
}

bool ListingCache::knows(std::string_view rel) const { return find(rel) != nullptr; }

bool ListingCache::reuse(std::string_view rel, const DirStamp& stamp, std::vector<ListedEntry>& out) const {
  const Kept* k = find(rel);
  return k != nullptr && decode(*k, stamp, out);
}

bool ListingCache::reuse_at(int root_fd, const std::string& rel, std::vector<ListedEntry>& out) const {
  const Kept* k = find(rel);
  if (k == nullptr) return false;
  const std::optional<DirStamp> now =
      directory_stamp(root_fd, rel.c_str(), AT_SYMLINK_NOFOLLOW | (rel.empty() ? AT_EMPTY_PATH : 0));
  return now && decode(*k, *now, out);
}

bool ListingCache::decode(const Kept& kept, const DirStamp& stamp, std::vector<ListedEntry>& out) const {
  if (!(kept.stamp == stamp)) return false;
  // Decoded defensively, though only this user writes the file: anything
  // but what save() writes is no listing at all.
  const std::string_view listing = kept.listing;
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
  kept.used.store(true, std::memory_order_relaxed);
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
  Kept& kept = fresh_.emplace_back();
  kept.stamp = stamp;
  kept.rel = owned_.emplace_back(rel);
  kept.listing = owned_.emplace_back(std::move(listing));
  ++counts_.recorded;
}

bool ListingCache::settle() {
  const std::lock_guard lock(mutex_);
  counts_.reused = reused_.load(std::memory_order_relaxed);
  reused_.store(0, std::memory_order_relaxed);
  bool all_used = true;
  for (std::size_t i = 0; i < count_ && all_used; ++i) all_used = kept_[i].used.load(std::memory_order_relaxed);
  if (fresh_.empty() && all_used) return false;  // the very listings loaded: nothing to write
  // A directory both loaded and listed afresh was not reused: the fresh
  // listing replaces the loaded one (index() keeps the first of a path).
  std::vector<const Kept*> keep;
  keep.reserve(count_ + fresh_.size());
  for (const Kept& k : fresh_) keep.push_back(&k);
  for (std::size_t i = 0; i < count_; ++i) {
    if (kept_[i].used.load(std::memory_order_relaxed)) keep.push_back(&kept_[i]);  // else gone, changed or not walked
  }
  index(std::move(keep));
  fresh_.clear();  // (their strings stay in owned_, the loaded ones in file_)
  return true;
}

void ListingCache::save(const fs::path& file, const fs::path& root) const {
  std::string out = header(root);
  std::size_t bytes = out.size();
  for (std::size_t i = 0; i < count_; ++i) bytes += kept_[i].rel.size() + kept_[i].listing.size() + 56;
  if (bytes > kMaxFileBytes) throw std::runtime_error("the workspace is too large to keep its listings");
  out.reserve(bytes + 32);
  out += "dirs " + std::to_string(count_) + "\n";
  for (std::size_t i = 0; i < count_; ++i) {
    const Kept& k = kept_[i];
    put(out, static_cast<std::uint32_t>(k.rel.size()));
    out += k.rel;
    put(out, k.stamp.dev);
    put(out, k.stamp.ino);
    put(out, k.stamp.ctime_sec);
    put(out, k.stamp.ctime_nsec);
    put(out, k.stamp.mount);
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
