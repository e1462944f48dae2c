// The CUDA driver API (libcuda.so.1), NVRTC and cuBLASLt as tables of C
// function pointers looked up with dlsym. Versioned symbols use the names
// cuda.h maps the plain names to (`cuMemAlloc` → `cuMemAlloc_v2`).

typealias CUresult = Int32
typealias CUdevice = Int32
typealias CUdeviceptr = UInt64
typealias CUhandle = OpaquePointer  // CUcontext, CUstream, CUevent, CUmodule, CUfunction

/// The driver functions Tessera calls.
final class CUDADriver: @unchecked Sendable {
    typealias Out<T> = UnsafeMutablePointer<T>
    let library: DynamicLibrary
    let cuInit: @convention(c) (UInt32) -> CUresult
    let cuDriverGetVersion: @convention(c) (Out<Int32>) -> CUresult
    let cuDeviceGetCount: @convention(c) (Out<Int32>) -> CUresult
    let cuDeviceGet: @convention(c) (Out<CUdevice>, Int32) -> CUresult
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, CUdevice) -> CUresult
    let cuDeviceGetAttribute: @convention(c) (Out<Int32>, Int32, CUdevice) -> CUresult
    let cuDeviceTotalMem: @convention(c) (Out<Int>, CUdevice) -> CUresult
    let cuDevicePrimaryCtxRetain: @convention(c) (Out<CUhandle?>, CUdevice) -> CUresult
    let cuCtxSetCurrent: @convention(c) (CUhandle?) -> CUresult
    let cuMemGetInfo: @convention(c) (Out<Int>, Out<Int>) -> CUresult
    let cuMemAlloc: @convention(c) (Out<CUdeviceptr>, Int) -> CUresult
    let cuMemFree: @convention(c) (CUdeviceptr) -> CUresult
    let cuMemAllocHost: @convention(c) (Out<UnsafeMutableRawPointer?>, Int) -> CUresult
    let cuMemFreeHost: @convention(c) (UnsafeMutableRawPointer?) -> CUresult
    let cuMemcpyHtoDAsync: @convention(c) (CUdeviceptr, UnsafeRawPointer?, Int, CUhandle?) -> CUresult
    let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer?, CUdeviceptr, Int, CUhandle?) -> CUresult
    let cuStreamCreate: @convention(c) (Out<CUhandle?>, UInt32) -> CUresult
    let cuStreamSynchronize: @convention(c) (CUhandle?) -> CUresult
    let cuStreamWaitEvent: @convention(c) (CUhandle?, CUhandle?, UInt32) -> CUresult
    let cuEventCreate: @convention(c) (Out<CUhandle?>, UInt32) -> CUresult
    let cuEventRecord: @convention(c) (CUhandle?, CUhandle?) -> CUresult
    let cuEventSynchronize: @convention(c) (CUhandle?) -> CUresult
    let cuModuleLoadData: @convention(c) (Out<CUhandle?>, UnsafeRawPointer?) -> CUresult
    let cuModuleGetFunction: @convention(c) (Out<CUhandle?>, CUhandle?, UnsafePointer<CChar>) -> CUresult
    let cuLaunchKernel:
        @convention(c) (
            CUhandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUhandle?,
            UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        ) -> CUresult
    let cuGetErrorString: @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CUresult

    init(_ library: DynamicLibrary) throws {
        self.library = library
        cuInit = try library.function("cuInit")
        cuDriverGetVersion = try library.function("cuDriverGetVersion")
        cuDeviceGetCount = try library.function("cuDeviceGetCount")
        cuDeviceGet = try library.function("cuDeviceGet")
        cuDeviceGetName = try library.function("cuDeviceGetName")
        cuDeviceGetAttribute = try library.function("cuDeviceGetAttribute")
        cuDeviceTotalMem = try library.function("cuDeviceTotalMem_v2")
        cuDevicePrimaryCtxRetain = try library.function("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try library.function("cuCtxSetCurrent")
        cuMemGetInfo = try library.function("cuMemGetInfo_v2")
        cuMemAlloc = try library.function("cuMemAlloc_v2")
        cuMemFree = try library.function("cuMemFree_v2")
        cuMemAllocHost = try library.function("cuMemAllocHost_v2")
        cuMemFreeHost = try library.function("cuMemFreeHost")
        cuMemcpyHtoDAsync = try library.function("cuMemcpyHtoDAsync_v2")
        cuMemcpyDtoHAsync = try library.function("cuMemcpyDtoHAsync_v2")
        cuStreamCreate = try library.function("cuStreamCreate")
        cuStreamSynchronize = try library.function("cuStreamSynchronize")
        cuStreamWaitEvent = try library.function("cuStreamWaitEvent")
        cuEventCreate = try library.function("cuEventCreate")
        cuEventRecord = try library.function("cuEventRecord")
        cuEventSynchronize = try library.function("cuEventSynchronize")
        cuModuleLoadData = try library.function("cuModuleLoadData")
        cuModuleGetFunction = try library.function("cuModuleGetFunction")
        cuLaunchKernel = try library.function("cuLaunchKernel")
        cuGetErrorString = try library.function("cuGetErrorString")
    }

    /// Throws `deviceError` naming the call and the driver's message unless `result` is CUDA_SUCCESS.
    func check(_ result: CUresult, _ call: String) throws {
        guard result != 0 else { return }
        var message: UnsafePointer<CChar>?
        let text = cuGetErrorString(result, &message) == 0 && message != nil ? String(cString: message!) : "unknown"
        throw TesseraError.deviceError("\(call) failed: CUDA error \(result) (\(text))")
    }

    /// The driver's CUDA version, e.g. "12.8".
    func version() -> String {
        var v: Int32 = 0
        guard cuDriverGetVersion(&v) == 0 else { return "unknown" }
        return "\(v / 1000).\(v % 1000 / 10)"
    }
}

/// Device attributes Tessera reads (values of CUdevice_attribute).
enum CUDAAttribute {
    static let multiprocessorCount: Int32 = 16
    static let computeCapabilityMajor: Int32 = 75
    static let computeCapabilityMinor: Int32 = 76
}

/// cuBLASLt, opened so `tessera devices` can report it; matmul through it is
/// still to come (matmul falls back to the CPU on the GPU for now).
final class CUBLASLt: @unchecked Sendable {
    let library: DynamicLibrary
    let cublasLtGetVersion: @convention(c) () -> Int

    init(_ library: DynamicLibrary) throws {
        self.library = library
        cublasLtGetVersion = try library.function("cublasLtGetVersion")
    }

    /// e.g. "12.9.1" (cuBLASLt reports major*10000 + minor*100 + patch).
    var version: String {
        let v = cublasLtGetVersion()
        return "\(v / 10000).\(v % 10000 / 100).\(v % 100)"
    }
}
