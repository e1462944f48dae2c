// DeviceInfo: what `tessera devices` lists.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A device, whether it can run, and its memory.
public struct DeviceInfo: Sendable, CustomStringConvertible {
    public let device: Device
    /// nil when usable; otherwise why not.
    public let unavailableReason: String?
    public let totalMemory: Int?
    public let detail: String

    /// The CPU and every GPU slot Tessera knows about.
    public static func all() -> [DeviceInfo] {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let cpu = DeviceInfo(
            device: .cpu, unavailableReason: nil, totalMemory: pages * pageSize,
            detail: "\(cores) cores, memory limit \(formatBytes(Memory.memoryLimit))")
        let gpu: DeviceInfo
        if let context = CUDABackend.context {
            let d = context.device
            gpu = DeviceInfo(
                device: .gpu(0), unavailableReason: nil, totalMemory: d.totalMemory,
                detail: "\(d.name), \(d.architecture), \(d.multiprocessors) SMs, memory limit "
                    + "\(formatBytes(context.home.allocator.limits.memory)); \(CUDABackend.summary); \(ncclSummary)")
        } else {
            let found = CUDABackend.summary
            gpu = DeviceInfo(
                device: .gpu(0),
                unavailableReason: CUDABackend.unavailableReason + (found.isEmpty ? "" : " [\(found)]"),
                totalMemory: nil, detail: "")
        }
        return [cpu, gpu]
    }

    /// The NCCL library the distributed `.nccl` backend would use, or why there is none.
    static var ncclSummary: String {
        do {
            let nccl = try NCCLLibrary.shared()
            return "NCCL \(nccl.version) (\(nccl.library.path))"
        } catch {
            return "no NCCL: \(error)"
        }
    }

    public var description: String {
        if let unavailableReason { return "\(device): unavailable: \(unavailableReason)" }
        let memory = totalMemory.map { formatBytes($0) } ?? "unknown memory"
        return "\(device): \(memory), \(detail)"
    }
}

func formatBytes(_ bytes: Int) -> String {
    let gib = Double(bytes) / 1_073_741_824
    if gib >= 1 { return "\((gib * 10).rounded() / 10) GiB" }
    return "\((Double(bytes) / 1_048_576 * 10).rounded() / 10) MiB"
}
