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
