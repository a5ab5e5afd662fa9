#include "keel/proto/rate_limiter.h"

#include <gtest/gtest.h>

namespace keel::proto {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(RateLimiter, AllowsTheBurstThenRefuses) {
  RateLimiter limiter(10, 3);
  EXPECT_TRUE(limiter.TryTake(0));
  EXPECT_TRUE(limiter.TryTake(0));
  EXPECT_TRUE(limiter.TryTake(0));
  EXPECT_FALSE(limiter.TryTake(0));
}

TEST(RateLimiter, RefillsAtTheRate) {
  RateLimiter limiter(10, 1);  // one token per 100 ms
  EXPECT_TRUE(limiter.TryTake(0));
  EXPECT_FALSE(limiter.TryTake(99 * kMs));
  EXPECT_TRUE(limiter.TryTake(100 * kMs));
  EXPECT_FALSE(limiter.TryTake(150 * kMs));
  EXPECT_TRUE(limiter.TryTake(200 * kMs));
}

TEST(RateLimiter, NeverHoldsMoreThanTheBurst) {
  RateLimiter limiter(1000, 2);
  EXPECT_TRUE(limiter.TryTake(0));
  const int64_t an_hour = 3600LL * 1000 * kMs;
  EXPECT_TRUE(limiter.TryTake(an_hour));
  EXPECT_TRUE(limiter.TryTake(an_hour));
  EXPECT_FALSE(limiter.TryTake(an_hour));
}

TEST(RateLimiter, ZeroMeansUnlimited) {
  RateLimiter limiter(0, 0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.TryTake(0));
}

TEST(RateLimiter, ClockGoingBackwardsGrantsNothing) {
  RateLimiter limiter(10, 1);
  EXPECT_TRUE(limiter.TryTake(1000 * kMs));
  EXPECT_FALSE(limiter.TryTake(0));
}

}  // namespace
}  // namespace keel::proto
