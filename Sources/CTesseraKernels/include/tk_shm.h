// Atomics on shared memory for the ring backend's same-host transport
// (Distributed/RingSharedMemory.swift): Swift's Synchronization atomics live
// in Swift-owned storage, while these flags live in a page that several
// processes map, so they are read and written through C11 builtins here.
#ifndef TK_SHM_H
#define TK_SHM_H

#include <stdint.h>

/// Loads the 64-bit flag at `p` with acquire ordering.
static inline uint64_t tk_shm_load_acquire(const void *p) {
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

/// Stores `v` into the 64-bit flag at `p` with release ordering.
static inline void tk_shm_store_release(void *p, uint64_t v) {
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

/// A spin-wait hint to the CPU (PAUSE on x86-64, YIELD on arm64).
static inline void tk_shm_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
