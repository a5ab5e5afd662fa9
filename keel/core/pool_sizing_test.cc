#include "keel/core/pool_sizing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace keel::core {
namespace {

TEST(PoolSizing, ComputeBoundGetsOneThreadPerCore) {
  EXPECT_EQ(ThreadsForPool({.wait_per_compute = 0.0, .cores = 8}), 8u);
}

TEST(PoolSizing, WaitingWorkGetsMoreThreads) {
  EXPECT_EQ(ThreadsForPool({.wait_per_compute = 9.0, .cores = 2}), 20u);
  EXPECT_EQ(ThreadsForPool({.wait_per_compute = 0.5, .cores = 4}), 6u);
}

TEST(PoolSizing, ClampsToBounds) {
  EXPECT_EQ(ThreadsForPool({.wait_per_compute = 1000.0, .cores = 16, .max_threads = 64}), 64u);
  EXPECT_EQ(ThreadsForPool({.wait_per_compute = 0.0, .cores = 1, .min_threads = 4}), 4u);
}

TEST(PoolSizing, DefaultsToTheCoresThisProcessMayUse) {
  EXPECT_GE(AvailableCores(), 1u);
  EXPECT_EQ(ThreadsForPool({}), AvailableCores());
  EXPECT_EQ(AllowedCpus().size(), AvailableCores());
}

TEST(PoolSizing, RejectsNonsense) {
  EXPECT_THROW(ThreadsForPool({.wait_per_compute = -1.0}), std::invalid_argument);
  EXPECT_THROW(ThreadsForPool({.wait_per_compute = std::numeric_limits<double>::quiet_NaN()}),
               std::invalid_argument);
  EXPECT_THROW(ThreadsForPool({.min_threads = 5, .max_threads = 2}), std::invalid_argument);
}

}  // namespace
}  // namespace keel::core
