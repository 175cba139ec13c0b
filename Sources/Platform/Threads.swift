// dmabench — Platform
//
// Threads and CPU affinity, wrapped once (pthreads + sched_setaffinity through CLinuxShims).

#if os(Linux)
import CLinuxShims
import Glibc

/// An error from a Linux call: the call's name and its errno.
public struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var errnoName: String { Errno.name(errno) }
    public var description: String { "\(call): \(String(cString: strerror(errno))) (\(errnoName))" }
}

public enum Errno {
    /// The symbolic name of an errno value, for messages ("ENOENT").
    public static func name(_ e: Int32) -> String {
        switch e {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case EINVAL: return "EINVAL"
        case EMFILE: return "EMFILE"
        case ENOSPC: return "ENOSPC"
        case EROFS: return "EROFS"
        case ENOSYS: return "ENOSYS"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case ECANCELED: return "ECANCELED"
        case ETIMEDOUT: return "ETIMEDOUT"
        case E2BIG: return "E2BIG"
        default: return "errno \(e)"
        }
    }

    /// strerror(3).
    public static func message(_ e: Int32) -> String { String(cString: strerror(e)) }
}

public enum CPU {
    /// The CPU the calling thread runs on now (sched_getcpu(3)).
    public static var current: Int { Int(cls_sched_getcpu()) }

    /// The number of online CPUs.
    public static var onlineCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// The Linux thread id of the calling thread (gettid(2)).
    public static var currentThreadID: Int32 { cls_gettid() }

    /// Pins the calling thread to `cpu`.
    public static func pinCurrentThread(to cpu: Int) throws(SystemError) {
        let rc = cls_pin_self_to_cpu(Int32(cpu))
        if rc != 0 { throw SystemError("pthread_setaffinity_np(cpu \(cpu))", errno: -rc) }
    }

    /// Pins the calling thread to a set of CPUs.
    public static func pinCurrentThread(to cpus: [Int]) throws(SystemError) {
        let size = Int(cls_cpu_setsize())
        var mask = [UInt8](repeating: 0, count: size)
        for c in cpus where c >= 0 && c < size { mask[c] = 1 }
        let rc = cls_pin_self_to_cpus(mask, Int32(size))
        if rc != 0 { throw SystemError("pthread_setaffinity_np(\(cpus))", errno: -rc) }
    }

    /// The CPUs the calling thread may run on.
    public static func currentAffinity() -> [Int] {
        let size = Int(cls_cpu_setsize())
        var mask = [UInt8](repeating: 0, count: size)
        let n = cls_get_affinity(&mask, Int32(size))
        guard n > 0 else { return [] }
        return mask.indices.filter { mask[$0] != 0 }
    }
}

/// A joinable OS thread, optionally pinned to one CPU.
///
/// Backends start their engine and executor threads with this, and join them in
/// `release()`, so that no backend thread outlives its channel (docs/architecture.md, "Negative controls").
public final class OSThread: @unchecked Sendable {
    private var handle: pthread_t
    private var joined = false
    /// The Linux thread id, available once the thread has started (see `waitUntilStarted`).
    public private(set) var threadID: Int32 = 0
    private let started = ParkingEvent()

    private final class Box {
        let body: () -> Void
        let cpu: Int?
        let name: String
        unowned(unsafe) var owner: OSThread?
        init(body: @escaping () -> Void, cpu: Int?, name: String) {
            self.body = body
            self.cpu = cpu
            self.name = name
        }
    }

    /// Starts a thread running `body`. If `cpu` is given the thread pins itself first; a
    /// pinning failure is reported through `pinningError` and the thread still runs.
    public init(name: String, cpu: Int? = nil, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        handle = pthread_t()
        let box = Box(body: body, cpu: cpu, name: name)
        box.owner = self
        let ctx = Unmanaged.passRetained(box).toOpaque()
        let rc = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            let owner = box.owner!
            owner.threadID = cls_gettid()
            let short = String(box.name.prefix(15))
            _ = cls_set_thread_name(short)
            if let cpu = box.cpu {
                do throws(SystemError) { try CPU.pinCurrentThread(to: cpu) } catch { owner.pinningError = error }
            }
            owner.started.signal()
            box.body()
            return nil
        }, ctx)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(ctx).release()
            throw SystemError("pthread_create", errno: rc)
        }
        started.wait(spinNanoseconds: 0)
    }

    /// Set when the thread could not pin itself.
    public private(set) var pinningError: SystemError?

    /// Waits for the thread to finish. Idempotent.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit {
        if !joined { pthread_detach(handle) }
    }
}
#endif
