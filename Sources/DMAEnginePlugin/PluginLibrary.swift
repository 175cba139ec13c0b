// dmabench — DMAEnginePlugin
//
// Loading an engine written in C (docs/plugin-abi.md): open the shared object, find
// `dmabench_plugin`, check the ABI version before reading anything else, then check each
// engine's table: its version and size, its name, that every required operation is there,
// and that its capabilities agree with each other and with the operations it provides.
// Each refusal is one line that names the file and what is wrong with it.

import CDMAPlugin
import DMAEngine
import Glibc
import Platform

/// Why a plugin was refused.
public struct PluginError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One engine of a loaded plugin.
public struct PluginEngine: @unchecked Sendable {
    /// The engine's table, static in the shared object (which is never closed).
    let table: UnsafePointer<dmabench_engine>
    public let name: String
    public let summary: String
    public let capabilities: DMACapabilities
    /// The plugin this engine came from: its path, ABI version and SHA-256.
    public let path: String
    public let abiVersion: UInt32
    public let sha256: String
}

/// A loaded plugin: its path, ABI version, SHA-256 and engines.
public struct PluginLibrary: Sendable {
    public let path: String
    public let abiVersion: UInt32
    public let sha256: String
    public private(set) var engines: [PluginEngine] = []

    /// The ABI version this build of dmabench speaks.
    public static var hostABIVersion: UInt32 { cdma_plugin_host_abi_version() }

    /// Plugins already loaded, by path: a second `plugin:PATH` spec reuses the first load.
    private static let loaded = LockedValue<[String: PluginLibrary]>([:])

    /// Loads the plugin at `path` (or returns the one already loaded from it).
    public static func load(path: String) throws(PluginError) -> PluginLibrary {
        if let l = loaded.withLock({ $0[path] }) { return l }
        guard access(path, F_OK) == 0 else { throw PluginError("plugin \(path): no such file") }
        let object: SharedObject
        do { object = try SharedObject.open(path) } catch {
            throw PluginError("plugin \(path): cannot load it: \(error.description)")
        }
        guard let sym = object.symbol("dmabench_plugin") else {
            throw PluginError("plugin \(path): missing symbol dmabench_plugin (export `const struct dmabench_plugin *dmabench_plugin(void)`)")
        }
        let entry = unsafeBitCast(sym, to: dmabench_plugin_fn.self)
        guard let plugin = entry() else { throw PluginError("plugin \(path): dmabench_plugin() returned NULL") }
        let version = plugin.pointee.abi_version
        guard version == hostABIVersion else {
            throw PluginError(
                "plugin \(path): ABI version \(version), but this dmabench speaks version \(hostABIVersion) (rebuild it against this dmabench_engine.h)")
        }
        var library = PluginLibrary(path: path, abiVersion: version, sha256: SHA256.hex(ofFile: path) ?? "unreadable")
        let count = Int(plugin.pointee.engine_count)
        guard count > 0, let list = plugin.pointee.engines else {
            throw PluginError("plugin \(path): it declares no engine (engine_count 0 or engines NULL)")
        }
        var names = Set<String>()
        for i in 0..<count {
            guard let table = list[i] else { throw PluginError("plugin \(path): engine \(i) is NULL") }
            let e = try validate(table, index: i, path: path, sha256: library.sha256)
            guard names.insert(e.name).inserted else {
                throw PluginError("plugin \(path): two engines are named '\(e.name)'")
            }
            library.engines.append(e)
        }
        let result = library
        loaded.withLock { $0[path] = result }
        return result
    }

    /// The engine named `name`, or the first one.
    public func engine(named name: String?) throws(PluginError) -> PluginEngine {
        guard let name else { return engines[0] }
        guard let e = engines.first(where: { $0.name == name }) else {
            throw PluginError(
                "plugin \(path): no engine named '\(name)'; it has: \(engines.map(\.name).joined(separator: ", "))")
        }
        return e
    }

    static func validate(
        _ table: UnsafePointer<dmabench_engine>, index: Int, path: String, sha256: String
    ) throws(PluginError) -> PluginEngine {
        let t = table.pointee
        let label = "plugin \(path): engine \(index)"
        guard t.abi_version == hostABIVersion else {
            throw PluginError("\(label): ABI version \(t.abi_version), but this dmabench speaks version \(hostABIVersion)")
        }
        guard Int(t.struct_size) >= MemoryLayout<dmabench_engine>.size else {
            throw PluginError("\(label): struct_size \(t.struct_size) is smaller than this ABI's \(MemoryLayout<dmabench_engine>.size)")
        }
        guard let cName = t.name else { throw PluginError("\(label): name is NULL") }
        let name = String(cString: cName)
        let valid = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard !name.isEmpty, name.allSatisfy({ valid.contains($0) }) else {
            throw PluginError("\(label): invalid name '\(name)' (letters, digits, '-', '_' and '.')")
        }
        let where_ = "plugin \(path): engine '\(name)'"
        // Operations every engine must have.
        let required: [(String, Bool)] = [
            ("create", t.create != nil), ("release", t.release != nil), ("thread_ids", t.thread_ids != nil),
            ("configure", t.configure != nil), ("prep_memcpy", t.prep_memcpy != nil),
            ("set_callback", t.set_callback != nil), ("free_desc", t.free_desc != nil), ("submit", t.submit != nil),
            ("issue_pending", t.issue_pending != nil), ("tx_status", t.tx_status != nil),
            ("terminate_async", t.terminate_async != nil), ("synchronize", t.synchronize != nil),
            ("debug_seed_cookie", t.debug_seed_cookie != nil), ("debug_watermark", t.debug_watermark != nil),
            ("debug_inject", t.debug_inject != nil), ("debug_release_stalls", t.debug_release_stalls != nil),
            ("debug_set_probe", t.debug_set_probe != nil),
        ]
        if let missing = required.first(where: { !$0.1 }) {
            throw PluginError("\(where_): operation \(missing.0) is NULL")
        }
        let caps = t.caps
        let f = caps.flags
        func has(_ bit: UInt32) -> Bool { f & bit != 0 }
        if f & ~cdma_plugin_cap_all != 0 {
            throw PluginError("\(where_): capabilities contradict: unknown flag bits 0x\(String(f & ~cdma_plugin_cap_all, radix: 16))")
        }
        if has(DMABENCH_CAP_PAUSE) && !has(DMABENCH_CAP_RESUME) {
            throw PluginError("\(where_): capabilities contradict: PAUSE without RESUME (cmd_pause needs both)")
        }
        if has(DMABENCH_CAP_MEMCPY_SG) != (caps.max_segments > 0) {
            throw PluginError(
                "\(where_): capabilities contradict: MEMCPY_SG is \(has(DMABENCH_CAP_MEMCPY_SG) ? "set" : "clear") but max_segments is \(caps.max_segments)")
        }
        let granularity: DMAResidueGranularity
        switch Int(caps.residue_granularity) {
        case DMABENCH_RESIDUE_DESCRIPTOR: granularity = .descriptor
        case DMABENCH_RESIDUE_SEGMENT: granularity = .segment
        case DMABENCH_RESIDUE_BURST: granularity = .burst
        default:
            throw PluginError("\(where_): capabilities contradict: unknown residue granularity \(caps.residue_granularity)")
        }
        let pairs: [(UInt32, String, Bool)] = [
            (DMABENCH_CAP_PAUSE, "pause", t.pause != nil), (DMABENCH_CAP_RESUME, "resume", t.resume != nil),
            (DMABENCH_CAP_MEMSET, "prep_memset", t.prep_memset != nil), (DMABENCH_CAP_CYCLIC, "prep_cyclic", t.prep_cyclic != nil),
            (DMABENCH_CAP_MEMCPY_SG, "prep_memcpy_sg", t.prep_memcpy_sg != nil), (DMABENCH_CAP_REUSE, "set_reuse", t.set_reuse != nil),
        ]
        for (bit, op, present) in pairs where has(bit) && !present {
            throw PluginError("\(where_): capabilities contradict: the capability for \(op) is set but \(op) is NULL")
        }
        let capabilities = DMACapabilities(
            cmdPause: has(DMABENCH_CAP_PAUSE), cmdResume: has(DMABENCH_CAP_RESUME), cmdTerminate: has(DMABENCH_CAP_TERMINATE),
            residueGranularity: granularity, descriptorReuse: has(DMABENCH_CAP_REUSE),
            completionNoOrder: has(DMABENCH_CAP_NO_ORDER), memset: has(DMABENCH_CAP_MEMSET), cyclic: has(DMABENCH_CAP_CYCLIC),
            synchronousIssue: has(DMABENCH_CAP_SYNC_ISSUE), memcpySG: has(DMABENCH_CAP_MEMCPY_SG),
            maxSegments: Int(caps.max_segments))
        let summary = t.description.map { String(cString: $0) } ?? "a C engine"
        return PluginEngine(
            table: table, name: name, summary: summary, capabilities: capabilities, path: path,
            abiVersion: t.abi_version, sha256: sha256)
    }
}

/// `plugin:PATH[:NAME]`: the path of a shared object and, optionally, one engine in it.
public struct PluginSpec: Sendable, Hashable {
    public var path: String
    public var engine: String?

    public init(path: String, engine: String?) {
        self.path = path
        self.engine = engine
    }

    public static let prefix = "plugin:"

    /// Parses a backend argument; nil when it is not a plugin spec. A NAME is whatever
    /// follows the last ':' when that part has no '/' (paths keep their colons otherwise).
    public init?(_ text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = String(text.dropFirst(Self.prefix.count))
        if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/"),
            rest[rest.index(after: colon)...].contains(where: { $0 != "." }), !rest[..<colon].isEmpty
        {
            path = String(rest[..<colon])
            engine = String(rest[rest.index(after: colon)...])
        } else {
            path = rest
            engine = nil
        }
    }
}
