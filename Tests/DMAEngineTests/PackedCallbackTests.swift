// dmabench — DMAEngineTests
//
// DMAPackedCallback: the one-slot form of DMACallback that backends keep in hot memory.

import DMAEngine
import Synchronization
import Testing

@Suite("DMAPackedCallback")
struct PackedCallbackTests {
    final class Log: @unchecked Sendable {
        let lines = Mutex<[String]>([])
        func add(_ s: String) { lines.withLock { $0.append(s) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// Each kind reaches its own closure with its parameter; with both set only
    /// `callback_result` runs, as `DMACallback.invoke` does.
    @Test func invokesTheKindItHolds() {
        let log = Log()
        DMAPackedCallback(.plain(parameter: 7) { p in log.add("plain \(p)") })
            .invoke(cookie: DMACookie(3), result: .noError)
        DMAPackedCallback(.result(parameter: 9) { c in log.add("result \(c.parameter) \(c.cookie) \(c.result.code)") })
            .invoke(cookie: DMACookie(4), result: DMAResult(.readFailed, residue: 5))
        DMAPackedCallback(DMACallback(plain: { _ in log.add("plain of both") }, withResult: { c in log.add("both \(c.parameter)") }, parameter: 11))
            .invoke(cookie: DMACookie(5), result: .noError)
        DMAPackedCallback().invoke(cookie: DMACookie(6), result: .noError)
        #expect(log.all == ["plain 7", "result 9 4 readFailed", "both 11"])
    }

    /// `take` leaves nothing behind; `unpacked` gives back an equivalent `DMACallback`.
    @Test func takeAndUnpack() {
        let log = Log()
        var p = DMAPackedCallback(.plain(parameter: 2) { q in log.add("plain \(q)") })
        #expect(p.isSet)
        p.unpacked.invoke(cookie: DMACookie(1), result: .noError)
        let moved = p.take()
        #expect(!p.isSet && moved.isSet && moved.parameter == 2)
        moved.invoke(cookie: DMACookie(1), result: .noError)
        #expect(log.all == ["plain 2", "plain 2"])
    }
}
