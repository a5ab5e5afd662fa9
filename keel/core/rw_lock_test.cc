#include "keel/core/rw_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "keel/core/lock_guard.h"
#include "keel/core/testing/other_thread.h"

namespace keel::core {
namespace {

using namespace std::chrono_literals;
using testing::FreeForOthers;
using testing::ReadableByOthers;

TEST(RwLock, ManyReadersHoldAtOnce) {
  RwLock lock("table");
  lock.LockShared();
  EXPECT_TRUE(ReadableByOthers(lock));
  lock.UnlockShared();
}

TEST(RwLock, WriterExcludesReadersAndWriters) {
  RwLock lock("table");
  lock.Lock();
  EXPECT_FALSE(ReadableByOthers(lock));
  EXPECT_FALSE(FreeForOthers(lock));
  lock.Unlock();
  EXPECT_TRUE(FreeForOthers(lock));
}

TEST(RwLock, WriterMayReenterItsWriteLock) {
  RwLock lock("table");
  lock.Lock();
  lock.Lock();
  EXPECT_TRUE(lock.TryLock());
  EXPECT_TRUE(lock.HeldExclusivelyByMe());
  lock.Unlock();
  lock.Unlock();
  EXPECT_TRUE(lock.HeldExclusivelyByMe());
  lock.Unlock();
  EXPECT_FALSE(lock.HeldExclusivelyByMe());
  EXPECT_TRUE(FreeForOthers(lock));
}

TEST(RwLock, WriterMayTakeTheReadLock) {
  RwLock lock("table");
  {
    WriteGuard<RwLock> w(lock);
    ReadGuard r(lock);
    ReadGuard r2(lock);
    EXPECT_TRUE(lock.HeldExclusivelyByMe());
  }
  EXPECT_TRUE(FreeForOthers(lock));
}

TEST(RwLock, ReleasingWriteWhileReadingDowngrades) {
  RwLock lock("table");
  lock.Lock();
  lock.LockShared();
  lock.Unlock();  // now an ordinary reader
  EXPECT_FALSE(lock.HeldExclusivelyByMe());
  EXPECT_FALSE(FreeForOthers(lock));     // a read is still held
  EXPECT_TRUE(ReadableByOthers(lock));   // other readers are welcome
  lock.UnlockShared();
  EXPECT_TRUE(FreeForOthers(lock));
}

TEST(RwLock, ReaderAskingToUpgradeIsRefused) {
  RwLock lock("room-members");
  ReadGuard r(lock);
  try {
    lock.Lock();
    FAIL() << "upgrade was not refused";
  } catch (const LockUpgradeError& e) {
    EXPECT_NE(std::string(e.what()).find("room-members"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("upgrade"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(lock.TryLock());
  EXPECT_FALSE(lock.HeldExclusivelyByMe());
}

TEST(RwLock, ReaderMayReenterWhileWriterWaits) {
  RwLock lock("table");
  lock.LockShared();
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    lock.Lock();
    writer_done = true;
    lock.Unlock();
  });
  // Give the writer time to announce itself; re-entry must not queue behind it.
  std::this_thread::sleep_for(20ms);
  lock.LockShared();
  EXPECT_FALSE(writer_done);
  lock.UnlockShared();
  lock.UnlockShared();
  writer.join();
  EXPECT_TRUE(writer_done);
}

TEST(RwLock, WaitingWriterHoldsBackNewReaders) {
  RwLock lock("table");
  lock.LockShared();
  std::atomic<bool> writer_in{false};
  std::thread writer([&] {
    lock.Lock();
    writer_in = true;
    lock.Unlock();
  });
  // Wait until the writer is waiting: new readers must then be refused.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    std::thread reader([&] {
      if (lock.TryLockShared()) {
        lock.UnlockShared();
      } else {
        refused = true;
      }
    });
    reader.join();
    if (!refused) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(refused) << "a new reader overtook a waiting writer";
  EXPECT_FALSE(writer_in);
  lock.UnlockShared();
  writer.join();
  EXPECT_TRUE(writer_in);
}

TEST(RwLock, WorksWithStandardGuards) {
  RwLock lock("table");
  {
    std::unique_lock w(lock);
  }
  {
    std::shared_lock r(lock);
  }
  EXPECT_TRUE(lock.TryLock());
  lock.Unlock();
}

TEST(RwLock, RefusesMoreReadHoldsThanItTracks) {
  std::vector<std::unique_ptr<RwLock>> locks;
  for (int i = 0; i < 33; ++i) locks.push_back(std::make_unique<RwLock>("many"));
  for (int i = 0; i < 32; ++i) locks[static_cast<size_t>(i)]->LockShared();
  EXPECT_THROW(locks[32]->LockShared(), std::length_error);
  EXPECT_FALSE(locks[32]->TryLockShared());
  locks[0]->LockShared();  // re-entry needs no new slot
  locks[0]->UnlockShared();
  for (int i = 0; i < 32; ++i) locks[static_cast<size_t>(i)]->UnlockShared();
  EXPECT_TRUE(locks[32]->TryLock());  // nothing was left half-taken
  locks[32]->Unlock();
}

TEST(RwLock, KeepsItsName) {
  RwLock lock("room-7");
  EXPECT_STREQ(lock.name(), "room-7");
}

}  // namespace
}  // namespace keel::core
