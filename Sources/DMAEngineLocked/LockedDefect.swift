// dmabench — DMAEngineLocked
//
// Deliberately broken variants of the locked backend, for tests only (docs/architecture.md, "Negative controls": the
// conformance suite must catch each one, which proves that the detector detects).

/// A deliberate bug, selected with `LockedChannel(options:defect:)`.
///
/// Each case breaks exactly one guarantee of docs/contract.md A.7; everything else behaves as in
/// the correct backend. Never use these outside tests.
@_spi(NegativeControls)
public enum LockedDefect: String, Sendable, Hashable, CaseIterable {
    /// `synchronize()` does not wait: it retires the terminated descriptors and returns at
    /// once, while a callback dispatched before the terminate may still be running (or about
    /// to run) and the engine may still be copying the previously active descriptor.
    /// Breaks T3 (a) and (b); caught by scenarios 15, 16, 17 (synchronize returns while the
    /// callback is blocked) and 29/30-style checks.
    case synchronizeDoesNotWait

    /// `terminateAsync()` removes the active descriptor from the channel (its cookie reads
    /// COMPLETE, it gets no callback) but does not tell the engine: the engine keeps copying
    /// it chunk by chunk to its end, stalls included (a stalled transfer resumes at
    /// `debugReleaseStalls()`), and `synchronize()` does not wait for it. Accesses after
    /// `synchronize()`/`terminateSync()` returned reach the access probe and the
    /// destination. Breaks T3 (a); caught by scenarios 14 and 30 (engine access after
    /// terminateSync) and 28 (engine keeps writing after terminateSync).
    case terminateKeepsCopyingActive

    /// Terminated descriptors are not dropped: `terminateAsync()` leaves the completed list
    /// alone, and `synchronize()` hands every terminated descriptor that has a callback to
    /// the callback executor (result `.noError`, residue 0) instead of retiring it; the
    /// executor holds them for 20 ms, so their callbacks run well after
    /// `synchronize()`/`terminateSync()` returned — the
    /// "callback after the test finished" that dmatest warns about. Breaks T1 and T3 (b);
    /// caught by scenarios 14, 20, 21 and 30 (callback for a terminated cookie or after
    /// terminateSync).
    case callbackAfterTerminate

    /// The engine publishes a chunk's residue after it ends the chunk, the order that the
    /// backend had until the random-client checker found it: `pause()` can return between
    /// the two stores, and the residue then moves once more while the channel is paused.
    /// Breaks P1 (residue frozen). The scenarios miss it (scenario 22 polls a slow
    /// transfer whose injected delay hides the window); the checker catches it.
    case residueAfterChunkEnd

    /// A cyclic transfer sees a pause only at a period boundary: the engine finishes the
    /// period it is in, chunk by chunk, after `pause()` returned, and then accounts the
    /// period. Breaks P1 (data moves and one more period completes while paused). Missed by
    /// the scenarios (scenario 22 pauses a plain transfer); caught by the checker.
    case periodAfterPause

    /// The descriptors chained behind the active one (the LLI chain of `takeChain`) run
    /// without the chunk gate, as a controller that walks its linked list after a pause
    /// command stopped only the current item: up to seven quick descriptors copy after
    /// `pause()` returned. Breaks P1 and P2. Missed by the scenarios (their paused
    /// transfers carry injected delays, so they are never chained); caught by the checker.
    case chainIgnoresPause

    /// A scatter-gather walk stops before its last piece (the last run of bytes between a
    /// source and a destination segment) and still completes with NOERROR, residue 0: the
    /// off-by-one of a driver that loops `i < nents - 1`. Breaks the copy itself; caught by
    /// scenario 35 (uneven segment lists land byte for byte).
    case sgSkipsLastSegment
}
