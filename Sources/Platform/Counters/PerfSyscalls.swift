// dmabench — Platform
//
// The perf_event_open(2) syscall, its ioctls and the group read, wrapped once. Only the
// files in Counters/ call these; they return -errno (or the fd) and never read errno after
// other Swift code has run.

#if os(Linux)
import CLinuxShims
import CPerf
import Glibc

/// perf_event_open(2). Returns the fd or -errno. The corresponding kernel call is
/// `perf_event_open(attr, pid, cpu, group_fd, flags)`.
@inline(never)
func sys_perf_event_open(_ attr: inout perf_event_attr, pid: Int32, cpu: Int32, groupFD: Int32, flags: UInt) -> Int32 {
    withUnsafeMutablePointer(to: &attr) { cls_perf_event_open(UnsafeMutableRawPointer($0), pid, cpu, groupFD, flags) }
}

/// ioctl(fd, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP). Returns 0 or -errno.
@inline(never)
func sys_perf_ioc_enable(_ fd: Int32, wholeGroup: Bool) -> Int32 { cls_perf_ioc_enable(fd, wholeGroup ? 1 : 0) }

/// ioctl(fd, PERF_EVENT_IOC_DISABLE, PERF_IOC_FLAG_GROUP). Returns 0 or -errno.
@inline(never)
func sys_perf_ioc_disable(_ fd: Int32, wholeGroup: Bool) -> Int32 { cls_perf_ioc_disable(fd, wholeGroup ? 1 : 0) }

/// read(2) on an event fd into `buffer`. Returns the byte count or -errno (EINTR retried).
@inline(never)
func sys_perf_read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
    while true {
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if n >= 0 { return n }
        let e = errno
        if e != EINTR { return -Int(e) }
    }
}

/// close(2), ignoring errors (an event fd has nothing to flush).
@inline(never)
func sys_close(_ fd: Int32) { _ = Glibc.close(fd) }
#endif
