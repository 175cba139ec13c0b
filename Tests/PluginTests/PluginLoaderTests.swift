// dmabench — PluginTests
//
// The loader's checks (docs/plugin-abi.md, "Loading and refusals"): each bad plugin is refused with one
// line that names the file and the fault; a good one yields its engines, version and hash.

import DMAEngine
import DMAEnginePlugin
import Foundation
import Platform
import TestHelpers
import Testing

@Suite(.enabled(if: PluginFixtures.cCompiler != nil, "no C compiler (clang, cc or gcc) on PATH to build the bad plugins"))
struct PluginLoaderTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "dmabench-plugins-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func refusal(_ path: String) -> String? {
        do {
            _ = try PluginLibrary.load(path: path)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a missing file is refused in one line")
    func missingFile() {
        let why = refusal(dir + "/nope.so")
        #expect(why == "plugin \(dir)/nope.so: no such file")
    }

    @Test("a file that is not a shared object is refused in one line")
    func notAnObject() throws {
        let p = dir + "/text.so"
        try "not ELF".write(toFile: p, atomically: true, encoding: .utf8)
        let why = try #require(refusal(p))
        #expect(why.hasPrefix("plugin \(p): cannot load it:"))
        #expect(!why.contains("\n"))
    }

    @Test(
        "each bad plugin is refused with its reason, in one line",
        arguments: [
            ("NO_SYMBOL", "missing symbol dmabench_plugin"),
            ("WRONG_VERSION", "ABI version 99, but this dmabench speaks version 1"),
            ("PAUSE_ONLY", "capabilities contradict: PAUSE without RESUME"),
            ("SG_NO_SEGMENTS", "capabilities contradict: MEMCPY_SG is set but max_segments is 0"),
            ("MISSING_OP", "operation synchronize is NULL"),
        ])
    func badPlugin(_ variant: String, _ expected: String) throws {
        let p = try PluginFixtures.badPlugin(variant, in: dir)
        let why = try #require(refusal(p), "\(variant) was loaded")
        #expect(why.contains(expected), "\(variant): \(why)")
        #expect(why.hasPrefix("plugin \(p)"))
        #expect(!why.contains("\n"))
    }

    @Test("a good plugin loads: its engine, ABI version and SHA-256; a channel it refuses to create is an error")
    func goodPlugin() throws {
        let p = try PluginFixtures.badPlugin(nil, in: dir)
        let lib = try PluginLibrary.load(path: p)
        #expect(lib.abiVersion == PluginLibrary.hostABIVersion)
        #expect(lib.engines.map(\.name) == ["bad"])
        #expect(lib.sha256 == SHA256.hex(ofFile: p))
        #expect(lib.sha256.count == 64)
        #expect(throws: DMAError.self) { try PluginChannel(engine: try lib.engine(named: nil)) }
        #expect(throws: PluginError.self) { try lib.engine(named: "other") }
    }

    @Test("plugin specs: PATH, PATH:NAME, and paths with colons")
    func specs() {
        #expect(PluginSpec("ring") == nil)
        #expect(PluginSpec("plugin:/a/b.so") == PluginSpec(path: "/a/b.so", engine: nil))
        #expect(PluginSpec("plugin:/a/b.so:cring") == PluginSpec(path: "/a/b.so", engine: "cring"))
        #expect(PluginSpec("plugin:/a:b/c.so") == PluginSpec(path: "/a:b/c.so", engine: nil))
    }

    @Test("SHA-256 of known inputs")
    func sha256() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
