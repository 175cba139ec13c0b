// dmabench — DMABenchCLI
//
// The whole `dmabench` command as a library (docs/adding-a-backend.md, "Out of tree"): a
// package of its own calls `DMABenchMain.main(extraBackends:)` from its executable and gets
// `run`, `conformance`, the checker, `list`, plots and every format for its own engine,
// beside the built-in ones.
//
//   dmabench run [...]           measure (docs/architecture.md, "Command line")
//   dmabench list backends|events|topology
//   dmabench conformance [...]   the docs/contract.md part B suite against a backend
//   dmabench env                 the context block of a result
//
// Errors are one line on stderr with a sysexits status (64 for bad input); never a trap or
// a stack trace.

import ArgumentParser
import DMABackends
import Foundation

struct DMABench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabench",
        abstract: "Benchmarks DMA-engine channel backends that follow the Linux dmaengine contract.",
        subcommands: [RunCommand.self, ShowCommand.self, ListCommand.self, ConformanceCommand.self, EnvCommand.self],
        defaultSubcommand: nil
    )
}

public enum DMABenchMain {
    /// Runs the `dmabench` command line with `arguments` (the process's, by default) and
    /// exits with its status. `extraBackends` join the registry, after the built-in ones, for
    /// every subcommand; a name that is already taken is a usage error (exit 64).
    public static func main(extraBackends: [BackendEntry] = [], arguments: [String] = Array(CommandLine.arguments.dropFirst()))
        -> Never
    {
        do {
            try BackendRegistry.register(extraBackends)
        } catch {
            Console.error("\(error)")
            exit(64)
        }
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
    }
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
