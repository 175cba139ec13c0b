// dmabench — DMABackends
//
// Backends from C plugins (`plugin:PATH[:NAME]`, docs/plugin-abi.md): the spec is loaded
// once, its engine is registered under the engine's own name, and the rest of dmabench sees
// an ordinary registry entry. The built-in backends never go through this path.

import DMAEngine
import DMAEnginePlugin
import Synchronization

public enum PluginBackends {
    private static let registeredEngines = Mutex<[PluginEngine]>([])

    /// Every plugin engine registered so far (the result's context lists them).
    public static var engines: [PluginEngine] { registeredEngines.withLock { $0 } }

    /// `names` with each `plugin:PATH[:NAME]` replaced by the registry name of the engine it
    /// loads (registered on first use). Other names pass through unchanged.
    public static func resolve(_ names: [String]) throws(PluginError) -> [String] {
        var out: [String] = []
        for n in names {
            guard let spec = PluginSpec(n) else {
                out.append(n)
                continue
            }
            guard !spec.path.isEmpty else { throw PluginError("plugin spec '\(n)' has no path; use plugin:PATH[:NAME]") }
            let library = try PluginLibrary.load(path: spec.path)
            let engine = try library.engine(named: spec.engine)
            let known = registeredEngines.withLock { list in list.first { $0.name == engine.name } }
            if let known {
                guard known.path == engine.path else {
                    throw PluginError("plugin \(spec.path): engine '\(engine.name)' is already loaded from \(known.path)")
                }
                out.append(engine.name)
                continue
            }
            let entry = BackendEntry(name: engine.name, summary: "plugin \(spec.path): \(engine.summary)") { o throws(DMAError) in
                // As for the built-in ring: the engine thread runs the callbacks unless the
                // client asks otherwise (two threads on a 2-CPU machine, not three).
                var o = o
                o.callbackContext = o.requestedCallbackContext ?? .engineThread
                return try PluginChannel(engine: engine, options: o)
            }
            do { try BackendRegistry.register([entry]) } catch {
                throw PluginError("plugin \(spec.path): \(error.description)")
            }
            registeredEngines.withLock { $0.append(engine) }
            out.append(engine.name)
        }
        return out
    }
}
