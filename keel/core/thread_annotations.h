#pragma once
// Clang thread-safety annotations (-Wthread-safety). They compile to nothing
// on other compilers. Use them on every piece of shared state:
//   int count_ KEEL_GUARDED_BY(mu_);
//   void FlushLocked() KEEL_REQUIRES(mu_);

#if defined(__clang__)
#define KEEL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define KEEL_THREAD_ANNOTATION(x)
#endif

#define KEEL_CAPABILITY(x) KEEL_THREAD_ANNOTATION(capability(x))
#define KEEL_SCOPED_CAPABILITY KEEL_THREAD_ANNOTATION(scoped_lockable)
#define KEEL_GUARDED_BY(x) KEEL_THREAD_ANNOTATION(guarded_by(x))
#define KEEL_PT_GUARDED_BY(x) KEEL_THREAD_ANNOTATION(pt_guarded_by(x))
#define KEEL_REQUIRES(...) KEEL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define KEEL_REQUIRES_SHARED(...) KEEL_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define KEEL_ACQUIRE(...) KEEL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define KEEL_ACQUIRE_SHARED(...) KEEL_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define KEEL_RELEASE(...) KEEL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define KEEL_RELEASE_SHARED(...) KEEL_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define KEEL_RELEASE_GENERIC(...) KEEL_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define KEEL_TRY_ACQUIRE(...) KEEL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define KEEL_TRY_ACQUIRE_SHARED(...) KEEL_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))
#define KEEL_EXCLUDES(...) KEEL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define KEEL_NO_THREAD_SAFETY_ANALYSIS KEEL_THREAD_ANNOTATION(no_thread_safety_analysis)
