// dmabench — DMAEngine
//
// Status, transfer state and per-transfer results (docs/contract.md A.5, A.6 K5).

/// The status of one cookie. The corresponding kernel type is `enum dma_status`.
public enum DMAStatus: String, Sendable, Hashable, Codable {
    /// `DMA_COMPLETE`
    case complete
    /// `DMA_IN_PROGRESS`
    case inProgress
    /// `DMA_PAUSED`
    case paused
    /// `DMA_ERROR`
    case error
    /// `DMA_OUT_OF_ORDER`: the backend completes out of order and has not observed this cookie.
    case outOfOrder
}

/// The state returned beside a status. The corresponding kernel type is `struct dma_tx_state`.
public struct DMATxState: Hashable, Sendable {
    /// `last`: the last completed cookie.
    public var last: DMACookie
    /// `used`: the last cookie handed out.
    public var used: DMACookie
    /// Bytes still to transfer for the queried cookie (rule S5).
    public var residue: Int
    /// Bytes in flight on the channel (`in_flight_bytes`).
    public var inFlightBytes: Int

    public init(last: DMACookie, used: DMACookie, residue: Int = 0, inFlightBytes: Int = 0) {
        self.last = last
        self.used = used
        self.residue = residue
        self.inFlightBytes = inFlightBytes
    }
}

/// The outcome of one transfer. The corresponding kernel type is `enum dmaengine_tx_result`.
public enum DMAResultCode: String, Sendable, Hashable, Codable {
    /// `DMA_TRANS_NOERROR`
    case noError
    /// `DMA_TRANS_READ_FAILED`
    case readFailed
    /// `DMA_TRANS_WRITE_FAILED`
    case writeFailed
    /// `DMA_TRANS_ABORTED`
    case aborted
}

/// What a `callbackResult` receives. The corresponding kernel type is `struct dmaengine_result`.
public struct DMAResult: Hashable, Sendable {
    public var code: DMAResultCode
    public var residue: Int

    @inlinable
    public init(_ code: DMAResultCode, residue: Int = 0) {
        self.code = code
        self.residue = residue
    }

    public static let noError = DMAResult(.noError)
}
