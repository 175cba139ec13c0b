// dmabench — command line
//
//   dmabench run [...]           measure (docs/architecture.md, "Command line")
//   dmabench list backends|events|topology
//   dmabench conformance [...]   the docs/contract.md part B suite against a backend
//   dmabench env                 the context block of a result
//
// Errors are one line on stderr with a sysexits status (64 for bad input); never a trap or
// a stack trace.

import ArgumentParser
import Foundation

struct DMABench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabench",
        abstract: "Benchmarks DMA-engine channel backends that follow the Linux dmaengine contract.",
        subcommands: [RunCommand.self, ListCommand.self, ConformanceCommand.self, EnvCommand.self],
        defaultSubcommand: nil
    )
}


let arguments = Array(CommandLine.arguments.dropFirst())
do {
    try RepeatedOptionCheck.check(arguments)
    var command = try DMABench.parseAsRoot(arguments)
    try command.run()
    exit(0)
} catch let e as CLIError {
    Console.error(e.message)
    exit(e.status)
} catch {
    let code = DMABench.exitCode(for: error)
    if code == .success {
        // --help and --version land here.
        print(DMABench.fullMessage(for: error))
        exit(0)
    }
    Console.error(DMABench.message(for: error))
    exit(code == .validationFailure ? 64 : code.rawValue == 1 ? 64 : code.rawValue)
}

/// A repeated single-value option is a mistake the parser would silently resolve (last one
/// wins); we reject it instead.
enum RepeatedOptionCheck {
    static let singleValued: Set<String> = [
        "--backend", "--workload", "--size", "--batch", "--depth", "--channels", "--rate", "--placement", "--events",
        "--repetitions", "--duration", "--output", "--format", "--host-id", "--shard", "--iterations", "--soak", "--inject-faults",
    ]

    static func check(_ args: [String]) throws(CLIError) {
        var seen = Set<String>()
        for a in args {
            if a == "--" { break }
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            guard singleValued.contains(name) else { continue }
            if !seen.insert(name).inserted {
                throw .usage("option \(name) was given more than once; give it once, with a comma-separated list if you want several values")
            }
        }
    }
}
