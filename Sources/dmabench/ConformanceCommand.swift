// dmabench — command line: `dmabench conformance`

import ArgumentParser
import DMABackends
import Foundation

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance", abstract: "Run the CONTRACT.md part B conformance suite against a backend.")

    @Option(help: "Backend to check, or 'all'.")
    var backend: String = "all"

    func run() throws {
        throw CLIError.failure("the conformance suite is not wired into the command line yet")
    }
}
