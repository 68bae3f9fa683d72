#pragma once
// SHA-256 (FIPS 180-4), incremental, for the image context hash. Small and
// dependency-free so the host side needs no crypto library.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cagent::launcher::host {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  // Lowercase hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace cagent::launcher::host
