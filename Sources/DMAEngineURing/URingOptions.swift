// dmabench — DMAEngineURing
//
// The choices a `URingChannel` is created with: the io_uring setup flags and what backs
// the channel's coherent pool (the file the kernel reads sources from).

/// The io_uring setup of a channel. Each is a registry variant of the backend.
public enum URingSetup: String, Sendable, Hashable, CaseIterable {
    /// No setup flags. Clients submit from their own thread (`issuePending` is
    /// `io_uring_submit`); the engine thread reaps. Registry name `uring`.
    case plain
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`. Only the task that owns
    /// the ring may submit and reap, and completions run only when it enters the kernel, so
    /// the engine thread owns the ring: `issuePending` hands the issued descriptors to it
    /// (and rings its eventfd doorbell only when it sleeps with nothing in flight). Registry
    /// name `uring-defer`.
    case deferTaskrun = "defer"
    /// `IORING_SETUP_SQPOLL`: a kernel thread polls the SQ (10 ms idle), so `io_uring_submit`
    /// makes no syscall while that thread is awake. The SQ thread is left unpinned and the
    /// engine thread does not spin, so that the two never share one CPU
    /// (docs/measurement-notes.md, "URingSetup.sqpoll and URingCore.engineMain: the SQPOLL
    /// thread stays unpinned").
    /// Registry name `uring-sqpoll`.
    case sqpoll

    /// The registry name of the backend variant.
    public var backendName: String {
        switch self {
        case .plain: return "uring"
        case .deferTaskrun: return "uring-defer"
        case .sqpoll: return "uring-sqpoll"
        }
    }
}

/// What backs the channel's coherent pool: the analogue of `dma_alloc_coherent()` memory.
///
/// `allocateCoherent` carves buffers from one file mapped `MAP_SHARED`; a memcpy descriptor
/// becomes an `IORING_OP_READ` from that file at the source's offset. Which file matters
/// (docs/measurement-notes.md, "Reference facts from the plain-C anchors", and the comparison in `URingChannel`'s documentation):
/// shmem (memfd, tmpfs) reads are never tried inline, so every one goes through an io-wq
/// worker thread; reads from the page cache of a regular file on a disk filesystem run
/// inline in `io_uring_enter`.
public enum URingPoolBacking: Sendable, Hashable, CustomStringConvertible {
    /// `memfd_create`: shmem; every read is handed to an io-wq worker.
    case memfd
    /// An unlinked regular file (`O_TMPFILE`, else `mkstemp` + `unlink`) in `directory`,
    /// which must not be on tmpfs (checked with `statfs`). Reads run inline from the page cache.
    case file(directory: String)
    /// As `file`, with the file registered (`io_uring_register_files`, `IOSQE_FIXED_FILE`).
    /// The pool mapping is also offered as a fixed buffer (`READ_FIXED` when the destination
    /// lies in the pool), but the kernel registers only anonymous, shmem or hugetlb pages, so
    /// over a page-cache file that registration is refused and plain reads are used.
    case registeredFile(directory: String)

    /// A page-cache file in `/var/tmp` (a disk filesystem on the usual Linux install).
    public static let pageCacheFile = URingPoolBacking.file(directory: "/var/tmp")

    /// The measured choice: a page-cache file (see `URingChannel`), registered: without
    /// `fget`/`fput` per read, and with the file's atime no longer stamped (curing.c), the
    /// uring variants ran 1.11-1.12x at 64 B and 1.08x at 4 KiB (uring-defer) in paired
    /// rounds against the unregistered file (docs/measurement-notes.md).
    public static let `default` = URingPoolBacking.registeredFile(directory: "/var/tmp")

    public var description: String {
        switch self {
        case .memfd: return "memfd"
        case .file(let d): return "file(\(d))"
        case .registeredFile(let d): return "registeredFile(\(d))"
        }
    }
}
