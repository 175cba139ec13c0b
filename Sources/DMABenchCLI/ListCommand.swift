// dmabench — command line: `dmabench list backends|events|topology`

import ArgumentParser
import DMABackends
import DMAEngine
import Foundation
import Platform

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List backends, counter events, or the NUMA topology.")

    @Argument(help: "What to list: backends, events or topology.")
    var what: String

    func run() throws {
        switch what {
        case "backends":
            for e in BackendRegistry.all {
                let status = e.unavailableReason().map { "unavailable: \($0)" } ?? "available"
                print("\(e.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(e.summary) [\(status)]")
            }
        case "events":
            try listEvents()
        case "topology":
            print(NUMATopology.current().rendered(), terminator: "")
        default:
            throw CLIError.usage("unknown list '\(what)'; valid: backends, events, topology")
        }
    }
}

extension ListCommand {
    func listEvents() throws {
        let privilege = PerfPrivilege.current()
        print("libpfm4 \(PerfEvents.libraryVersion); perf_event_paranoid \(privilege.paranoidLevel.map(String.init) ?? "unknown")")
        for r in privilege.restrictions { print("note: \(r)") }
        let pmus: [CounterPMUListing]
        do { pmus = try PerfEvents.listEvents(privilege: privilege) } catch {
            throw CLIError.failure("cannot list events: \(error)")
        }
        for p in pmus {
            let status = p.availability.map { $0.isOK ? "usable here" : "not usable here: \($0)" } ?? "not tested"
            print("")
            print("PMU \(p.name) (\(p.kind.rawValue)\(p.isDefault ? ", default" : ""), \(p.genericCounters) generic + \(p.fixedCounters) fixed counters): \(p.description)")
            print("  \(status)\(p.representative.map { " (tested with \($0))" } ?? "")")
            for e in p.events {
                let mark: String
                if let a = e.availability {
                    mark = a.isOK ? "usable" : "unusable: \(a)"
                } else {
                    mark = "as its PMU (not opened on its own)"
                }
                print("  \(e.name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(mark)\(e.note.map { "; \($0)" } ?? "")")
            }
        }
    }
}
