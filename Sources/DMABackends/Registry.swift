// dmabench — DMABackends
//
// The registry of backends, keyed by name. The command line and the benchmarks choose a
// backend here; a new backend is one new module plus one line in `entries` (Entries.swift).

import DMAEngine
import Synchronization

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
    /// Every backend, in the order sweeps run them: the built-in ones, then those registered.
    public static var all: [BackendEntry] { entries + registered.withLock { $0 } }

    public static var names: [String] { all.map(\.name) }

    public static func entry(named name: String) -> BackendEntry? { all.first { $0.name == name } }

    /// Backends from outside this package (`DMABenchMain.main(extraBackends:)`), appended
    /// after the built-in ones.
    private static let registered = Mutex<[BackendEntry]>([])

    /// Adds `extra` to the registry. A name that is empty, has a character other than
    /// letters, digits, `-`, `_` and `.`, or is already taken is refused (nothing is added).
    public static func register(_ extra: [BackendEntry]) throws(RegistryError) {
        let valid = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        var taken = Set(all.map(\.name))
        for e in extra {
            guard !e.name.isEmpty, e.name.allSatisfy({ valid.contains($0) }), e.name != "all" else {
                throw RegistryError(description: "invalid backend name '\(e.name)': use letters, digits, '-', '_' and '.' (and not 'all')")
            }
            guard taken.insert(e.name).inserted else {
                throw RegistryError(description: "backend name '\(e.name)' is already registered; choose another")
            }
        }
        registered.withLock { $0 += extra }
    }
}

/// Why `BackendRegistry.register` refused a backend.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
