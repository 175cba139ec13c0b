// dmabench — DMAEngine
//
// Descriptor handles and completion callbacks (docs/contract.md A.2, A.6).

/// A handle to a prepared descriptor in a channel's preallocated pool.
///
/// The corresponding kernel type is `struct dma_async_tx_descriptor *`. A handle is a slot
/// index plus a generation, so a stale handle (a non-REUSE descriptor after submit, or any
/// descriptor after `release`) is detected as `.invalidHandle` instead of touching another
/// transfer's slot. Handles are plain values: copying one costs nothing.
public struct DMADescriptor: Hashable, Sendable, CustomStringConvertible {
    /// The slot in the channel's descriptor pool.
    public var index: UInt32
    /// Incremented by the channel each time the slot is recycled.
    public var generation: UInt32

    @inlinable
    public init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }

    public var description: String { "desc#\(index).\(generation)" }
}

/// What a completion callback is told.
public struct DMACompletion: Sendable {
    /// The cookie of the completed submission.
    public var cookie: DMACookie
    /// The outcome and residue (rule K5).
    public var result: DMAResult
    /// The client's value given with the callback (kernel: `callback_param`).
    public var parameter: UInt64

    @inlinable
    public init(cookie: DMACookie, result: DMAResult, parameter: UInt64) {
        self.cookie = cookie
        self.result = result
        self.parameter = parameter
    }
}

/// A completion callback attached to a descriptor before submit.
///
/// The kernel has two fields: `callback(param)` and `callback_result(param, result)`; when
/// both are set only `callback_result` is invoked (scenario 10). Both forms take a `parameter`,
/// the analogue of `callback_param`.
///
/// Hot-path note: a closure that captures nothing has no context object, so storing it in a
/// descriptor slot and calling it costs no allocation and no reference counting. Benchmarks
/// pass their state through `parameter` for that reason; tests may capture freely.
public struct DMACallback: Sendable {
    public typealias Plain = @Sendable (_ parameter: UInt64) -> Void
    public typealias WithResult = @Sendable (_ completion: DMACompletion) -> Void

    /// `callback`
    public var plain: Plain?
    /// `callback_result`, which takes precedence over `plain`.
    public var withResult: WithResult?
    /// `callback_param`
    public var parameter: UInt64

    @inlinable
    public init(plain: Plain? = nil, withResult: WithResult? = nil, parameter: UInt64 = 0) {
        self.plain = plain
        self.withResult = withResult
        self.parameter = parameter
    }

    /// A `callback_result` callback.
    @inlinable
    public static func result(parameter: UInt64 = 0, _ body: @escaping WithResult) -> DMACallback {
        DMACallback(withResult: body, parameter: parameter)
    }

    /// A plain `callback`, which does not see the result.
    @inlinable
    public static func plain(parameter: UInt64 = 0, _ body: @escaping Plain) -> DMACallback {
        DMACallback(plain: body, parameter: parameter)
    }

    /// True when a callback is set.
    @inlinable
    public var isSet: Bool { plain != nil || withResult != nil }

    /// Invokes the callback in a non-blocking context, as the kernel's tasklet does:
    /// `callback_result` if set, otherwise `callback`.
    @inlinable
    public func invoke(cookie: DMACookie, result: DMAResult) {
        NonBlockingContext.withCallbackContext {
            // Optional-chaining calls on the borrowed fields: no copy of the closures, so no
            // retain/release pair per callback (`if let` would copy them).
            if withResult != nil {
                withResult?(DMACompletion(cookie: cookie, result: result, parameter: parameter))
            } else {
                plain?(parameter)
            }
        }
    }
}

/// A `DMACallback` in one closure slot instead of two, for backends that keep callbacks in
/// hot descriptor memory: 25 bytes against 40, so a descriptor's hot fields fit one 64-byte
/// line, and moving one moves one closure instead of two optionals.
///
/// When both closures are set, only `withResult` is kept: the one `DMACallback.invoke`
/// would call.
public struct DMAPackedCallback: Sendable {
    /// `callback_param`
    public var parameter: UInt64
    @usableFromInline var body: Body

    @usableFromInline
    enum Body: Sendable {
        case none
        case plain(DMACallback.Plain)
        case withResult(DMACallback.WithResult)
    }

    @inlinable
    public init() {
        parameter = 0
        body = .none
    }

    /// Moves `callback` in (no retain).
    @inlinable
    public init(_ callback: consuming DMACallback) {
        parameter = callback.parameter
        if let w = callback.withResult.take() {
            body = .withResult(w)
        } else if let p = callback.plain.take() {
            body = .plain(p)
        } else {
            body = .none
        }
    }

    /// True when a callback is set.
    @inlinable
    public var isSet: Bool {
        if case .none = body { return false }
        return true
    }

    /// The callback as a `DMACallback` (a copy: retains the closure).
    @inlinable
    public var unpacked: DMACallback {
        switch body {
        case .none: return DMACallback(parameter: parameter)
        case .plain(let p): return DMACallback(plain: p, parameter: parameter)
        case .withResult(let w): return DMACallback(withResult: w, parameter: parameter)
        }
    }

    /// Moves the callback out, leaving none here (no retain, no release).
    @inlinable
    public mutating func take() -> DMAPackedCallback {
        var out = DMAPackedCallback()
        out.parameter = parameter
        swap(&out.body, &body)
        return out
    }

    /// Drops the callback (releases its closure).
    @inlinable
    public mutating func clear() { body = .none }

    /// Invokes the callback in a non-blocking context, as `DMACallback.invoke` does, and
    /// consumes it: its closure is released once, after the call.
    @inlinable
    public consuming func invoke(cookie: DMACookie, result: DMAResult) {
        let parameter = parameter
        var body = Body.none
        swap(&body, &self.body)
        switch body {
        case .none: return
        case .plain(let p): NonBlockingContext.withCallbackContext { p(parameter) }
        case .withResult(let w):
            NonBlockingContext.withCallbackContext { w(DMACompletion(cookie: cookie, result: result, parameter: parameter)) }
        }
    }
}
