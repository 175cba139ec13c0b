// dmabench — HarnessTests
//
// The machine's identity in a result: the CPU description and the host identifier, on
// cpuinfo texts of two CPU generations behind the same generic model name.

import Testing

@testable import Harness

@Suite("Environment capture")
struct EnvironmentTests {
    /// Two vCPUs of a KVM guest as /proc/cpuinfo lists them (trimmed).
    static func cpuinfo(model: Int, flags: String) -> String {
        let one = { (n: Int) in
            """
            processor\t: \(n)
            vendor_id\t: AuthenticAMD
            cpu family\t: 25
            model\t\t: \(model)
            model name\t: AMD EPYC
            stepping\t: 1
            flags\t\t: fpu sse2 \(flags) rdtscp
            """
        }
        return one(0) + "\n\n" + one(1) + "\n"
    }

    @Test("the CPU description carries the signature and the copy features, in a fixed order")
    func description() {
        let zen3 = EnvironmentCapture.cpuDescription(cpuinfo: Self.cpuinfo(model: 1, flags: "fsrm erms avx2"))
        #expect(zen3 == "AMD EPYC (family 25, model 1, stepping 1; avx2 erms fsrm)")
        let zen4 = EnvironmentCapture.cpuDescription(cpuinfo: Self.cpuinfo(model: 17, flags: "avx2 avx512f"))
        #expect(zen4 == "AMD EPYC (family 25, model 17, stepping 1; avx2 avx512f)")
        // "model" must not match "model name", whichever comes first.
        #expect(EnvironmentCapture.cpuSignature(cpuinfo: "model name\t: X\nmodel\t\t: 7\ncpu family\t: 6\n") == "family 6, model 7")
    }

    @Test("without an x86 signature the description is the model name alone, and the host id is the machine-id's")
    func noSignature() {
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"
        #expect(EnvironmentCapture.cpuSignature(cpuinfo: arm) == nil)
        #expect(EnvironmentCapture.cpuDescription(cpuinfo: arm) == "unknown")
        #expect(EnvironmentCapture.cpuDescription(cpuinfo: "model name\t: Neoverse\n") == "Neoverse")
        // The hash of the machine-id alone, as before the signature was added (FNV-1a of the
        // id, computed apart): results of such a machine keep their folder.
        #expect(EnvironmentCapture.hostID(machineID: "0123456789abcdef", cpuSignature: nil) == "host-2e373913")
    }

    @Test("one machine-id on two CPU generations gives two host ids; the same inputs give the same id; --host-id wins")
    func hostID() {
        let id = "5f1e2d3c4b5a69788796a5b4c3d2e1f0"
        let a = EnvironmentCapture.hostID(machineID: id, cpuSignature: "family 25, model 1, stepping 1")
        let b = EnvironmentCapture.hostID(machineID: id, cpuSignature: "family 25, model 17, stepping 1")
        #expect(a != b)
        #expect(a == EnvironmentCapture.hostID(machineID: id, cpuSignature: "family 25, model 1, stepping 1"))
        #expect(a != EnvironmentCapture.hostID(machineID: id, cpuSignature: nil))
        #expect(EnvironmentCapture.hostID(override: "lab-7") == "lab-7")
    }
}
