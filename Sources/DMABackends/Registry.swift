// dmabench — DMABackends
//
// The registry of backends, keyed by name. The command line and the benchmarks choose a
// backend here; a new backend is one new module plus one line in `entries` (Entries.swift).

import DMAEngine

/// One registered backend (or backend variant).
public struct BackendEntry: Sendable {
    public var name: String
    public var summary: String
    /// Nil when the backend can run on this machine, else the reason it cannot.
    public var unavailableReason: @Sendable () -> String?
    public var make: @Sendable (DMAChannelOptions) throws(DMAError) -> any DMAChannel

    public init(
        name: String, summary: String, unavailableReason: @escaping @Sendable () -> String? = { nil },
        make: @escaping @Sendable (DMAChannelOptions) throws(DMAError) -> any DMAChannel
    ) {
        self.name = name
        self.summary = summary
        self.unavailableReason = unavailableReason
        self.make = make
    }
}

public enum BackendRegistry {
    /// Every backend, in the order sweeps run them.
    public static var all: [BackendEntry] { entries }

    public static var names: [String] { entries.map(\.name) }

    public static func entry(named name: String) -> BackendEntry? { entries.first { $0.name == name } }
}
