// dmabench — command line: `dmabench env`

import ArgumentParser
import Foundation
import Harness

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env", abstract: "Print the context block a result would record, as JSON.")

    @Option(name: .customLong("host-id"), help: "Host identifier to record.")
    var hostID: String?

    func run() throws {
        let c = EnvironmentCapture.context(commandLine: ["dmabench", "env"], hostID: hostID)
        let e = ResultIO.encoder()
        FileHandle.standardOutput.write(try e.encode(c))
        print()
    }
}
