// dmabench — command line: `dmabench env`
//
// Without options: the context block a result would record, as JSON. `--check` lists what
// makes this machine noisy, as pyperf's `system show` does, and `--apply` (root) makes the
// safe changes. `--round-trip` measures the cross-CPU round trip alone (anchor-compare.py
// records it per round, to see which mode this VM was in).

import ArgumentParser
import Foundation
import Harness
import Platform

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env", abstract: "Print the context a result would record (JSON), check the machine for stable measurement, or measure the cross-CPU round trip.")

    @Option(name: .customLong("host-id"), help: "Host identifier to record.")
    var hostID: String?

    @Flag(help: "List each machine setting that affects measurement: its value, what stable measurement wants, and the command that fixes it. Changes nothing.")
    var check = false

    @Flag(help: "With --check, as root: set every CPU's governor to performance and turn boost off, printing each change and how to undo it.")
    var apply = false

    @Flag(name: .customLong("round-trip"), help: "Measure the cache-line round trip between two CPUs (a few ms) and print it as one JSON line.")
    var roundTrip = false

    @Option(help: "With --round-trip: the two CPUs, e.g. 0,1 (default: the first two online CPUs).")
    var cpus: String?

    func validate() throws {
        if apply && !check { throw CLIError.usage("--apply needs --check") }
        if cpus != nil && !roundTrip { throw CLIError.usage("--cpus applies to --round-trip") }
        if roundTrip && check { throw CLIError.usage("--round-trip and --check are separate: give one of them") }
    }

    func run() throws {
        if roundTrip { return try measureRoundTrip() }
        if check { return try checkMachine() }
        let c = EnvironmentCapture.context(commandLine: ["dmabench", "env"], hostID: hostID)
        let e = ResultIO.encoder()
        FileHandle.standardOutput.write(try e.encode(c))
        print()
    }

    func measureRoundTrip() throws {
        let online = CPU.onlineCount
        var pair = [0, 1]
        if let text = cpus {
            let items = ListParser.items(text)
            guard items.count == 2, let a = Int(items[0]), let b = Int(items[1]), a >= 0, b >= 0, a != b else {
                throw CLIError.usage("invalid cpus '\(text)': expected two different CPU numbers, e.g. 0,1")
            }
            guard a < online, b < online else { throw CLIError.usage("invalid cpus '\(text)': this machine has CPUs 0 to \(online - 1)") }
            pair = [a, b]
        }
        guard online > 1 else { throw CLIError.failure("a round trip needs two CPUs; this machine has one") }
        guard let ns = Calibrator.roundTrip(cpuA: pair[0], cpuB: pair[1], trips: 2_000, trials: 5, best: true) else {
            throw CLIError.failure("could not start the round-trip thread on cpu \(pair[1])")
        }
        print(String(format: "{\"roundTripNs\": %.1f, \"cpus\": [%d, %d]}", ns, pair[0], pair[1]))
    }

    func checkMachine() throws {
        let props = SystemState.properties()
        var rows: [[String]] = [["setting", "value", "for stable measurement", "status", "fix"]]
        for p in props {
            let status = p.value == nil ? "unknown" : p.ok == false ? "CHANGE" : p.ok == true ? "ok" : "-"
            rows.append([p.name, p.value ?? "unavailable: \(p.unavailable ?? "?")", p.recommended ?? "-", status, p.ok == false ? (p.fix ?? "-") : "-"])
        }
        print(Formats.render(rows), terminator: "")
        let changes = SystemState.safeChanges()
        if !apply {
            if changes.isEmpty {
                print("\n--apply would change nothing here (no governor or boost control to set).")
            } else {
                print("\n--apply (as root) would make \(changes.count) changes:")
                for c in changes { print("  \(c.path): \(c.from) -> \(c.to)") }
            }
            return
        }
        guard geteuid() == 0 else { throw CLIError(message: "--apply changes sysfs and needs root; nothing was changed", status: 77) }
        if changes.isEmpty {
            print("\nnothing to change: no governor or boost control to set on this machine.")
            return
        }
        print("")
        for c in changes {
            do throws(SystemError) {
                try SystemState.write(c.to, to: c.path)
                print("changed \(c.path): \(c.from) -> \(c.to)   (undo: \(c.undo))")
            } catch {
                print("could not change \(c.path): \(error)")
            }
        }
    }
}
