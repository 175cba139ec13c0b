// dmabench — CLinuxShims implementation.
#define _GNU_SOURCE
#include "CLinuxShims.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cls_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return rc < 0 ? -errno : 0;
}

int cls_futex_wake(uint32_t *addr, int count) {
    long rc = syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    return rc < 0 ? -errno : (int)rc;
}

int cls_pin_self_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cls_pin_self_to_cpus(const uint8_t *mask, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count && i < CPU_SETSIZE; i++)
        if (mask[i]) CPU_SET(i, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cls_get_affinity(uint8_t *mask, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) return -rc;
    int n = 0;
    for (int i = 0; i < count && i < CPU_SETSIZE; i++) {
        mask[i] = CPU_ISSET(i, &set) ? 1 : 0;
        n += mask[i];
    }
    return n;
}

int cls_sched_getcpu(void) { return sched_getcpu(); }
int cls_gettid(void) { return (int)syscall(SYS_gettid); }
int cls_cpu_setsize(void) { return CPU_SETSIZE; }

int cls_perf_event_open(void *attr, pid_t pid, int cpu, int group_fd, unsigned long flags) {
    long fd = syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags);
    return fd < 0 ? -errno : (int)fd;
}

static int perf_ioc(int fd, unsigned long req, int whole_group) {
    int rc = ioctl(fd, req, whole_group ? PERF_IOC_FLAG_GROUP : 0);
    return rc < 0 ? -errno : 0;
}
int cls_perf_ioc_enable(int fd, int whole_group) { return perf_ioc(fd, PERF_EVENT_IOC_ENABLE, whole_group); }
int cls_perf_ioc_disable(int fd, int whole_group) { return perf_ioc(fd, PERF_EVENT_IOC_DISABLE, whole_group); }
int cls_perf_ioc_reset(int fd, int whole_group) { return perf_ioc(fd, PERF_EVENT_IOC_RESET, whole_group); }

int cls_set_thread_name(const char *name) { return -pthread_setname_np(pthread_self(), name); }

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

int cls_flush_instruction(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    // CPUID leaf 7, subleaf 0, EBX bit 23: CLFLUSHOPT.
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23))) return 2;
    // CPUID leaf 1, EDX bit 19: CLFSH.
    if (__get_cpuid(1, &a, &b, &c, &d) && (d & (1u << 19))) return 1;
    return 0;
#elif defined(__aarch64__)
    return 3;
#else
    return 0;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("clflushopt")))
static void flush_opt(const char *p, const char *end) {
    for (; p < end; p += 64) __builtin_ia32_clflushopt(p);
}
#endif

size_t cls_flush_range(const void *start, size_t n, int instruction) {
    if (n == 0 || instruction == 0) return 0;
    // Lines are 64 bytes on every x86-64 and on the arm64 cores this runs on; a larger line
    // is flushed more than once, which is harmless.
    const char *p = (const char *)((uintptr_t)start & ~(uintptr_t)63);
    const char *end = (const char *)start + n;
    size_t lines = (size_t)(end - p + 63) / 64;
#if defined(__x86_64__) || defined(__i386__)
    if (instruction == 2) {
        flush_opt(p, end);
    } else {
        for (; p < end; p += 64) __builtin_ia32_clflush(p);
    }
    // clflushopt is ordered only by a fence; mfence also orders clflush against later loads.
    __builtin_ia32_mfence();
#elif defined(__aarch64__)
    for (; p < end; p += 64) __asm__ __volatile__("dc civac, %0" ::"r"(p) : "memory");
    __asm__ __volatile__("dsb ish" ::: "memory");
#endif
    return lines;
}
