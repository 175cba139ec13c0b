// dmabench — command line: `dmabench list backends|events|topology`

import ArgumentParser
import DMABackends
import DMAEngine
import Foundation

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
        default:
            throw CLIError.usage("unknown list '\(what)'; valid: backends")
        }
    }
}
