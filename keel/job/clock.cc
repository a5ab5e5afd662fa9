#include "keel/job/clock.h"

namespace keel::job {

SteadyClock& SteadyClock::Instance() noexcept {
  static SteadyClock clock;
  return clock;
}

}  // namespace keel::job
