// dmabench — command line: `dmabench show`
//
// Prints a result file as `run` would have: the summary table (or every counter with
// `--counters full`), CSV, Google Benchmark JSON, or the NUMA matrix.

import ArgumentParser
import Foundation
import Harness

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a result file: the summary table, every counter (--counters full), or another format."
    )

    @Argument(help: "A result file written by 'dmabench run'.")
    var result: String

    @Option(help: "Counters in the table: summary or full.")
    var counters: String = "summary"

    @Option(help: "Output format: table, csv or gbench.")
    var format: String = "table"

    func run() throws {
        guard let detail = Formats.CounterDetail(rawValue: counters) else {
            throw CLIError.usage("unknown counters '\(counters)'; valid: summary, full")
        }
        guard let fmt = OutputFormat(rawValue: format), fmt != .json else {
            throw CLIError.usage("unknown format '\(format)'; valid: table, csv, gbench (the file itself is the JSON)")
        }
        let doc: ResultDocument
        do { doc = try ResultIO.read(path: result) } catch {
            throw CLIError(message: "\(error)", status: FileManager.default.fileExists(atPath: result) ? 65 : 66)
        }
        switch fmt {
        case .table:
            print(Formats.summary(doc, counters: detail), terminator: "")
            if Set(doc.points.map { $0.placement.requested }).count > 1 { print(Formats.numaMatrix(doc), terminator: "") }
        case .csv: print(Formats.csv(doc), terminator: "")
        case .gbench:
            FileHandle.standardOutput.write(try Formats.gbench(doc))
            print()
        case .json: break
        }
    }
}
