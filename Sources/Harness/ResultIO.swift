// dmabench — Harness
//
// Writing and reading result files. Files are written atomically: to a temporary file in
// the same directory, fsync'd, then renamed over the target, so a reader never sees half a
// file and a failed write leaves the previous file intact.

import Foundation
import Platform

public struct ResultIOError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// True for an I/O failure (exit 73), false for bad content (exit 64/65).
    public var isIOError: Bool
    public init(_ d: String, io: Bool) {
        description = d
        isIOError = io
    }
}

public enum ResultIO {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func encode(_ doc: ResultDocument) throws -> Data {
        try encoder().encode(doc)
    }

    /// Writes `data` to `path` atomically (temp + fsync + rename).
    public static func writeAtomically(_ data: Data, to path: String) throws(ResultIOError) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ResultIOError("cannot create directory \(dir): \(Self.reason(error))", io: true)
        }
        let failure: SystemError? = data.withUnsafeBytes { raw in
            do throws(SystemError) {
                try Files.writeAtomically(raw, to: path)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            throw ResultIOError("cannot write \(path): \(String(cString: strerror(failure.errno)))", io: true)
        }
    }

    static func reason(_ error: any Error) -> String {
        // The underlying POSIX error of a Cocoa error; `as? NSError` does not match it here,
        // bridging through `any Error` does.
        if let u = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }) {
            return u.localizedDescription
        }
        return "\(error.localizedDescription)"
    }

    /// Reads and validates a result file.
    public static func read(path: String) throws(ResultIOError) -> ResultDocument {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ResultIOError("cannot read \(path)", io: true)
        }
        return try decode(data, name: path)
    }

    public static func decode(_ data: Data, name: String) throws(ResultIOError) -> ResultDocument {
        struct Version: Decodable { var schemaVersion: Int? }
        let v: Version
        do { v = try JSONDecoder().decode(Version.self, from: data) } catch {
            throw ResultIOError("\(name): not a valid JSON document (truncated or malformed)", io: false)
        }
        guard let sv = v.schemaVersion else { throw ResultIOError("\(name): missing schemaVersion", io: false) }
        guard sv == ResultDocument.currentSchemaVersion else {
            throw ResultIOError("\(name): schemaVersion \(sv) is not supported (expected \(ResultDocument.currentSchemaVersion))", io: false)
        }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try d.decode(ResultDocument.self, from: data) } catch let DecodingError.keyNotFound(k, ctx) {
            throw ResultIOError("\(name): missing key '\(k.stringValue)' at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))", io: false)
        } catch {
            throw ResultIOError("\(name): does not match the result schema (\(error))", io: false)
        }
    }
}
