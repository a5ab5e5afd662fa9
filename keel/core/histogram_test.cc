#include "keel/core/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace keel::core {
namespace {

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 64; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 64u);
  EXPECT_EQ(h.Min(), 0u);
  EXPECT_EQ(h.Max(), 63u);
  EXPECT_EQ(h.Percentile(0.5), 31u);
  EXPECT_EQ(h.Percentile(1.0), 63u);
}

TEST(Histogram, PercentilesAreWithinOneBucketAbove) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency(11.0, 1.0);  // around 60 us, long tail
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<uint64_t>(latency(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {0.5, 0.9, 0.99, 0.999}) {
    const uint64_t exact = values[static_cast<size_t>(p * static_cast<double>(values.size())) - 1];
    const uint64_t reported = h.Percentile(p);
    EXPECT_GE(reported, exact) << p;
    EXPECT_LE(static_cast<double>(reported), static_cast<double>(exact) * (1.0 + 1.0 / 64) + 1) << p;
  }
  EXPECT_EQ(h.Max(), values.back());
}

TEST(Histogram, MergeAddsCounts) {
  Histogram a, b;
  a.Record(10, 3);
  b.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.Count(), 4u);
  EXPECT_EQ(a.Min(), 10u);
  EXPECT_EQ(a.Max(), 1'000'000u);
  EXPECT_EQ(a.Percentile(0.75), 10u);
  EXPECT_DOUBLE_EQ(a.Mean(), (30.0 + 1e6) / 4);
}

TEST(Histogram, HugeValuesAreClampedNotLost) {
  Histogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.Count(), 1u);
  EXPECT_GT(h.Percentile(1.0), uint64_t{1} << 47);
}

TEST(Histogram, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.Percentile(0.99), 0u);
  EXPECT_EQ(h.Min(), 0u);
  EXPECT_EQ(h.Mean(), 0.0);
}

}  // namespace
}  // namespace keel::core
