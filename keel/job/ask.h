#pragma once
// PostAsk: ask one actor for a value and receive it as a job on another.
//
//   PostAsk(room, [](Room& r) { return r.PlayerCount(); },
//           lobby, [](Lobby& l, std::size_t n) { l.OnCount(n); });
//
// `query` runs on `target`'s queue; its result is then posted to `caller`'s
// queue, where `reply` runs. No worker thread ever blocks waiting. Both actors
// are held by shared_ptr until their part has run. Returns false if the
// target refused the post (shutdown); a refused reply is dropped.
// Callable from any thread.

#include <memory>
#include <type_traits>
#include <utility>

#include "keel/job/job_queue.h"

namespace keel::job {

template <typename Target, typename Query, typename Caller, typename Reply>
bool PostAsk(std::shared_ptr<Target> target, Query query, std::shared_ptr<Caller> caller,
             Reply reply) {
  static_assert(std::is_base_of_v<JobQueue, Target> && std::is_base_of_v<JobQueue, Caller>);
  JobQueue& target_queue = *target;
  return target_queue.Post(
      [target = std::move(target), query = std::move(query), caller = std::move(caller),
       reply = std::move(reply)]() mutable {
        auto value = query(*target);
        JobQueue& caller_queue = *caller;
        caller_queue.Post(
            [caller = std::move(caller), reply = std::move(reply),
             value = std::move(value)]() mutable { reply(*caller, std::move(value)); },
            "ask-reply");
      },
      "ask");
}

}  // namespace keel::job
