#pragma once
// Histogram: counts of non-negative values (latencies in ns, sizes) in
// log-linear buckets, for percentiles without keeping every sample.
//
// Values below 64 are exact; above, each power of two is split into 64
// buckets, so a reported percentile is within 1/64 (1.6%) above the true
// value (it reports the bucket's upper bound: never an optimistic number).
// Fixed memory (about 23 KiB), O(1) Record, O(buckets) Percentile.
//
// Not thread-safe: keep one per thread (bot, connection group) and Merge
// them at the end.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace keel::core {

class Histogram {
 public:
  static constexpr uint32_t kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr uint32_t kSub = 1u << kSubBits;
  static constexpr uint32_t kMaxBits = 48;  // values up to 2^48 - 1 (78 hours in ns)

  void Record(uint64_t value, uint64_t times = 1) noexcept {
    if (value >= kMaxValue) value = kMaxValue - 1;
    counts_[Index(value)] += times;
    count_ += times;
    sum_ += value * times;
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }
  void Merge(const Histogram& other) noexcept {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    if (other.min_ < min_) min_ = other.min_;
    if (other.max_ > max_) max_ = other.max_;
  }
  void Clear() noexcept { *this = Histogram(); }

  uint64_t Count() const noexcept { return count_; }
  uint64_t Min() const noexcept { return count_ == 0 ? 0 : min_; }
  uint64_t Max() const noexcept { return max_; }
  double Mean() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }
  // The smallest bucket bound at or below which a fraction `p` (0..1] of
  // the values lie; never more than Max().
  uint64_t Percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    const double want = p * static_cast<double>(count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (counts_[i] != 0 && static_cast<double>(seen) >= want) {
        const uint64_t bound = UpperBound(i);
        return bound < max_ ? bound : max_;
      }
    }
    return max_;
  }

 private:
  static constexpr uint64_t kMaxValue = uint64_t{1} << kMaxBits;
  static constexpr size_t kBuckets = kSub + (kMaxBits - kSubBits) * kSub;

  static size_t Index(uint64_t v) noexcept {
    if (v < kSub) return static_cast<size_t>(v);
    const uint32_t top = 63u - static_cast<uint32_t>(std::countl_zero(v));  // >= kSubBits
    const uint32_t shift = top - kSubBits;
    const uint64_t sub = (v >> shift) - kSub;  // 0..kSub-1
    return kSub + static_cast<size_t>(shift) * kSub + static_cast<size_t>(sub);
  }
  static uint64_t UpperBound(size_t index) noexcept {
    if (index < kSub) return index;
    const size_t shift = (index - kSub) / kSub;
    const uint64_t sub = (index - kSub) % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace keel::core
