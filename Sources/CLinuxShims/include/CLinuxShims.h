// dmabench — CLinuxShims
//
// Thin C for what Swift cannot call directly (docs/architecture.md, "C shims: what Swift cannot call directly"): function-like macros
// (CPU_SET, _IO ioctls), variadic syscall(2) and thread naming. Each function says why it exists.
// Only Platform imports this module.
#ifndef CLINUXSHIMS_H
#define CLINUXSHIMS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/// futex(FUTEX_WAIT_PRIVATE) on a 32-bit word; syscall(2) is variadic. Returns 0 or -errno.
int cls_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);
/// futex(FUTEX_WAKE_PRIVATE). Returns the number woken or -errno.
int cls_futex_wake(uint32_t *addr, int count);

/// Pins the calling thread to one CPU (CPU_ZERO/CPU_SET are macros). Returns 0 or -errno.
int cls_pin_self_to_cpu(int cpu);
/// Pins the calling thread to a set of CPUs given as a 0/1 array. Returns 0 or -errno.
int cls_pin_self_to_cpus(const uint8_t *mask, int count);
/// The CPUs the calling thread may run on, written as 0/1 into mask. Returns the count or -errno.
int cls_get_affinity(uint8_t *mask, int count);
/// sched_getcpu(3) (needs _GNU_SOURCE, which Swift's Glibc module is built without).
int cls_sched_getcpu(void);
/// gettid(2).
int cls_gettid(void);
/// pthread_setname_np(3) on the calling thread (needs _GNU_SOURCE).
int cls_set_thread_name(const char *name);
/// CPU_SETSIZE.
int cls_cpu_setsize(void);

/// perf_event_open(2) through syscall(2). Returns an fd or -errno.
int cls_perf_event_open(void *attr, pid_t pid, int cpu, int group_fd, unsigned long flags);
/// ioctl(PERF_EVENT_IOC_ENABLE/DISABLE/RESET), which are _IO() macros. Returns 0 or -errno.
int cls_perf_ioc_enable(int fd, int whole_group);
int cls_perf_ioc_disable(int fd, int whole_group);
int cls_perf_ioc_reset(int fd, int whole_group);

/// Asks the CPU to fetch the line at `p`, with intent to write (arm `prfm pstl1keep`; x86
/// `prefetchw` only when the target has PRFCHW, else `prefetcht0`, a read prefetch: the
/// default x86-64 target has not, and an inline-asm `prefetchw` measured no different).
/// A hint only: it never faults and is not a memory access in the language's model.
static inline void cls_prefetch_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

/// A CPU pause hint for spin loops (x86 `pause`, arm `yield`).
static inline void cls_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
/// Which instruction `cls_flush_range` uses: 2 = x86 `clflushopt`, 1 = x86 `clflush`,
/// 3 = arm64 `dc civac`, 0 = none (the caller must evict another way). cpuid needs
/// <cpuid.h>, a compiler header Swift cannot import.
int cls_flush_instruction(void);
/// Writes back and evicts every cache line of [p, p + n) from every level of the hierarchy,
/// with the instruction `cls_flush_instruction` names, then fences, so that the next access
/// misses. Returns the number of lines flushed, 0 when the CPU has no such instruction.
size_t cls_flush_range(const void *p, size_t n, int instruction);

#endif
}

/// The CPU's timestamp counter (x86 `rdtsc`, arm64 `cntvct_el0`), 0 where there is none.
/// Not serializing: it may run a few tens of cycles early or late relative to neighbouring
/// instructions, like Google Benchmark's cycle clock. `StampClock` decides whether it is
/// usable (invariant and trusted by the kernel) and converts it to nanoseconds.
static inline uint64_t cls_read_tsc(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
/// Which instruction `cls_flush_range` uses: 2 = x86 `clflushopt`, 1 = x86 `clflush`,
/// 3 = arm64 `dc civac`, 0 = none (the caller must evict another way). cpuid needs
/// <cpuid.h>, a compiler header Swift cannot import.
int cls_flush_instruction(void);
/// Writes back and evicts every cache line of [p, p + n) from every level of the hierarchy,
/// with the instruction `cls_flush_instruction` names, then fences, so that the next access
/// misses. Returns the number of lines flushed, 0 when the CPU has no such instruction.
size_t cls_flush_range(const void *p, size_t n, int instruction);

#endif
}

/// Which instruction `cls_flush_range` uses: 2 = x86 `clflushopt`, 1 = x86 `clflush`,
/// 3 = arm64 `dc civac`, 0 = none (the caller must evict another way). cpuid needs
/// <cpuid.h>, a compiler header Swift cannot import.
int cls_flush_instruction(void);
/// Writes back and evicts every cache line of [p, p + n) from every level of the hierarchy,
/// with the instruction `cls_flush_instruction` names, then fences, so that the next access
/// misses. Returns the number of lines flushed, 0 when the CPU has no such instruction.
size_t cls_flush_range(const void *p, size_t n, int instruction);

#endif
