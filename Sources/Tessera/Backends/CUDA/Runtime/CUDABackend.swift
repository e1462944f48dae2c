// The CUDA backend's front door: opens the driver, NVRTC and cuBLASLt once,
// on first use, and either holds the ready device or says why there is none.
// Nothing here crashes when libraries or devices are missing.

/// Everything one usable GPU needs.
package final class CUDAContext: @unchecked Sendable {
    let driver: CUDADriver
    let nvrtc: NVRTC
    let cublasLt: CUBLASLt?
    package let device: CUDADevice
    let home: DeviceHome
    let kernels: CUDAKernelCache

    init(driver: CUDADriver, nvrtc: NVRTC, cublasLt: CUBLASLt?, device: CUDADevice) throws {
        self.driver = driver
        self.nvrtc = nvrtc
        self.cublasLt = cublasLt
        self.device = device
        home = DeviceHome(memory: try CUDAMemory(device: device))
        kernels = CUDAKernelCache(device: device, nvrtc: nvrtc)
    }
}

package enum CUDABackend {
    /// What loading found: the context, or why not, plus the versions seen on the way.
    struct Probe: Sendable {
        var context: CUDAContext?
        var reason: String?
        var driverVersion: String?
        var nvrtc: String?
        var cublasLt: String?
    }

    static let probe: Probe = load()

    package static var isAvailable: Bool { probe.context != nil }
    /// Why no GPU can be used ("" when one can).
    package static var unavailableReason: String { probe.reason ?? "" }
    package static var context: CUDAContext? { probe.context }

    private static func load() -> Probe {
        var probe = Probe()
        // NVRTC first: its version is worth reporting even without a driver.
        var nvrtc: NVRTC?
        switch CUDALibrary.nvrtc.open() {
        case .success(let library):
            nvrtc = try? NVRTC(library)
            probe.nvrtc = nvrtc.map { "NVRTC \($0.version) (\(library.path))" } ?? "\(library.path) lacks NVRTC symbols"
        case .failure(let failure):
            probe.nvrtc = failure.description
        }
        var cublasLt: CUBLASLt?
        if case .success(let library) = CUDALibrary.cublasLt.open() {
            cublasLt = try? CUBLASLt(library)
            probe.cublasLt = cublasLt.map { "cuBLASLt \($0.version)" }
        }
        let driver: CUDADriver
        switch CUDALibrary.driver.open() {
        case .failure(let failure):
            probe.reason = failure.description
            return probe
        case .success(let library):
            do { driver = try CUDADriver(library) } catch {
                probe.reason = "\(error)"
                return probe
            }
        }
        probe.driverVersion = driver.version()
        do {
            try driver.check(driver.cuInit(0), "cuInit")
            var count: Int32 = 0
            try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
            guard count > 0 else {
                probe.reason = "NVIDIA driver \(probe.driverVersion!) found, but no CUDA device"
                return probe
            }
            guard let nvrtc else {
                probe.reason = "a CUDA device is present, but \(probe.nvrtc ?? "NVRTC is missing")"
                return probe
            }
            // One GPU per rank of a host (Distributed/RankDevice.swift); device 0 otherwise.
            let ordinal = try RankDevice.ordinal(environment: processEnvironment(), deviceCount: Int(count))
            let device = try CUDADevice(driver: driver, ordinal: ordinal)
            guard
                device.computeCapability.major >= 7 && device.architecture != "sm_70" && device.architecture != "sm_72"
            else {
                probe.reason = "\(device.name) is \(device.architecture); Tessera's CUDA kernels need sm_75 or newer"
                return probe
            }
            probe.context = try CUDAContext(driver: driver, nvrtc: nvrtc, cublasLt: cublasLt, device: device)
        } catch {
            probe.reason = "\(error)"
        }
        return probe
    }

    /// One line per library and device for `tessera devices`.
    static var summary: String {
        var parts: [String] = []
        if let v = probe.driverVersion { parts.append("driver CUDA \(v)") }
        if let n = probe.nvrtc { parts.append(n) }
        if let c = probe.cublasLt { parts.append(c) }
        return parts.joined(separator: "; ")
    }
}
