// The CUDA backend's front door. The driver is opened at run time; until the
// CUDA kernels land, a present driver still reports the GPU as unavailable.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum CUDABackend {
    /// Why no GPU can be used, or nil when one can.
    static let probe: String? = {
        guard let handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL) else {
            return "libcuda.so.1 not found (no NVIDIA driver)"
        }
        dlclose(handle)
        return "NVIDIA driver found, but this build of Tessera has no CUDA backend yet"
    }()

    static var isAvailable: Bool { probe == nil }
    static var unavailableReason: String { probe ?? "" }
}
