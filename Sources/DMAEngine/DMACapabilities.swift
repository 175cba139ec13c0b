// dmabench — DMAEngine
//
// Capabilities, prep flags and channel configuration (docs/contract.md A.2, A.9).

/// How finely a backend reports residue. The corresponding kernel type is
/// `enum dma_residue_granularity`.
public enum DMAResidueGranularity: String, Sendable, Hashable, Codable {
    /// `DMA_RESIDUE_GRANULARITY_DESCRIPTOR`: residue is always 0.
    case descriptor
    /// `DMA_RESIDUE_GRANULARITY_SEGMENT`
    case segment
    /// `DMA_RESIDUE_GRANULARITY_BURST`
    case burst
}

/// What a channel supports. The corresponding kernel type is `struct dma_slave_caps`.
public struct DMACapabilities: Hashable, Sendable {
    /// `cmd_pause`: true only if pause *and* resume work.
    public var cmdPause: Bool
    /// `cmd_resume`
    public var cmdResume: Bool
    /// `cmd_terminate`
    public var cmdTerminate: Bool
    public var residueGranularity: DMAResidueGranularity
    /// `descriptor_reuse`
    public var descriptorReuse: Bool
    /// The backend completes out of order and follows rule S8.
    public var completionNoOrder: Bool
    /// `DMA_MEMSET` in the capability mask.
    public var memset: Bool
    /// `DMA_CYCLIC` in the capability mask.
    public var cyclic: Bool
    /// `issuePending` does the issued work on the calling thread and returns when it is done
    /// (callbacks included), unless another thread is already draining the channel: the
    /// kernel's async_tx fallback to a synchronous CPU copy. Nothing is in flight between two
    /// calls of one client thread, so what needs an engine running beside the client (a
    /// transfer sampled mid-flight, a stall the client releases) cannot be asked of it; the
    /// conformance suite skips those scenarios with that reason.
    public var synchronousIssue: Bool
    /// `prepareMemcpySG` works (the kernel's `DMA_MEMCPY_SG`, DPDK's `RTE_DMA_CAPA_OPS_COPY_SG`).
    public var memcpySG: Bool
    /// The most segments each list of a `prepareMemcpySG` may hold (`max_sg_burst`, DPDK's
    /// `max_sges`); 0 when `!memcpySG`.
    public var maxSegments: Int

    public init(
        cmdPause: Bool, cmdResume: Bool, cmdTerminate: Bool = true,
        residueGranularity: DMAResidueGranularity, descriptorReuse: Bool,
        completionNoOrder: Bool = false, memset: Bool, cyclic: Bool, synchronousIssue: Bool = false,
        memcpySG: Bool = false, maxSegments: Int = 0
    ) {
        self.memcpySG = memcpySG && maxSegments > 0
        self.maxSegments = memcpySG ? maxSegments : 0
        self.cmdPause = cmdPause && cmdResume
        self.cmdResume = cmdResume
        self.cmdTerminate = cmdTerminate
        self.residueGranularity = residueGranularity
        self.descriptorReuse = descriptorReuse
        self.completionNoOrder = completionNoOrder
        self.memset = memset
        self.cyclic = cyclic
        self.synchronousIssue = synchronousIssue
    }
}

/// Flags given at prep time. The corresponding kernel type is `enum dma_ctrl_flags`.
public struct DMAPrepFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `DMA_PREP_INTERRUPT`: run the callback on completion (rule K6).
    @inlinable public static var interrupt: DMAPrepFlags { DMAPrepFlags(rawValue: 1 << 0) }
    /// `DMA_CTRL_ACK`: the client acknowledges the descriptor (async_tx heritage; optional).
    @inlinable public static var ack: DMAPrepFlags { DMAPrepFlags(rawValue: 1 << 1) }

    /// What most clients pass: `[.interrupt, .ack]`.
    @inlinable public static var `default`: DMAPrepFlags { DMAPrepFlags(rawValue: 1 << 0 | 1 << 1) }
}

/// Channel configuration applied to later preps only (rule: `config` affects later preps).
/// The corresponding kernel call is `dmaengine_slave_config()`.
public struct DMAConfig: Hashable, Sendable {
    /// The engine moves data in bursts of this many bytes (`src_maxburst × addr_width`).
    /// The engine-access probe reports one access per burst, so a test can see which
    /// configuration a descriptor ran with (scenario 32). 0 means "the whole transfer".
    public var burstBytes: Int
    /// The pace of the peripheral's request line, in bytes per second: a cyclic transfer
    /// prepared afterwards moves no burst before its time, so it completes one period every
    /// `periodLength / pace` seconds (the analogue of a slave device's rate, e.g. 384 000 B/s
    /// for 48 kHz stereo 32-bit audio). 0 means memory speed. Other transfers ignore it.
    public var paceBytesPerSecond: Int

    public init(burstBytes: Int = 0, paceBytesPerSecond: Int = 0) {
        self.burstBytes = burstBytes
        self.paceBytesPerSecond = paceBytesPerSecond
    }
}
