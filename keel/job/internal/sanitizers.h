#pragma once
// KEEL_JOB_UNDER_TSAN: 1 when built with ThreadSanitizer, so stress tests can
// scale their job counts down to stay well under their time limit.

#if defined(__SANITIZE_THREAD__)
#define KEEL_JOB_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_JOB_UNDER_TSAN 1
#endif
#endif
#ifndef KEEL_JOB_UNDER_TSAN
#define KEEL_JOB_UNDER_TSAN 0
#endif
