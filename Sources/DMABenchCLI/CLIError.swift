// dmabench — command line
//
// Errors the command line reports: one line on stderr, and an exit status from sysexits.h
// (64 usage, 73 cannot create output, 70 internal failure).

import DMABackends
import ArgumentParser
import Foundation

struct CLIError: Error, CustomStringConvertible {
    var message: String
    var status: Int32

    static func usage(_ m: String) -> CLIError { CLIError(message: m, status: 64) }
    static func io(_ m: String) -> CLIError { CLIError(message: m, status: 73) }
    static func failure(_ m: String) -> CLIError { CLIError(message: m, status: 70) }

    var description: String { message }
}

enum Console {
    static func error(_ message: String) {
        let line = message.split(separator: "\n").joined(separator: "; ")
        FileHandle.standardError.write(Data("dmabench: error: \(line)\n".utf8))
    }

    static func note(_ message: String, newline: Bool = true, prefix: Bool = true) {
        FileHandle.standardError.write(Data(((prefix ? "dmabench: " : "") + message + (newline ? "\n" : "")).utf8))
    }

    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}

/// Parses comma-separated lists ("64,4K,1M").
enum ListParser {
    static func items(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    static func sizes(_ text: String) throws(CLIError) -> [Int] {
        var out: [Int] = []
        for item in items(text) {
            guard let v = ByteSizeParse.parse(item) else {
                throw .usage("invalid size '\(item)': expected a positive number of bytes such as 64, 4K, 64K, 1M (at most 1G)")
            }
            guard v > 0 else { throw .usage("invalid size '\(item)': a size must be at least 1 byte") }
            guard v <= 1 << 30 else { throw .usage("invalid size '\(item)': at most 1G per descriptor") }
            out.append(v)
        }
        return out
    }

    static func positiveInts(_ text: String, name: String, max: Int) throws(CLIError) -> [Int] {
        var out: [Int] = []
        for item in items(text) {
            guard let v = Int(item) else { throw .usage("invalid \(name) '\(item)': expected a whole number from 1 to \(max)") }
            guard v >= 1, v <= max else { throw .usage("invalid \(name) '\(item)': must be from 1 to \(max)") }
            out.append(v)
        }
        return out
    }
}

import Harness
enum ByteSizeParse {
    static func parse(_ s: String) -> Int? { ByteSize.parse(s) }
}

/// Backend arguments with each `plugin:PATH[:NAME]` loaded, registered and replaced by its
/// engine's name (docs/plugin-abi.md); a plugin that cannot be loaded is a usage error.
enum BackendArguments {
    static func resolve(_ text: String) throws(CLIError) -> [String] {
        do { return try PluginBackends.resolve(ListParser.items(text)) } catch { throw .usage(error.description) }
    }
}
