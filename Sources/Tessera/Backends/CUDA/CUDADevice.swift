// One CUDA device: its primary context, the stream all of Tessera's work on
// it goes to (so kernels and copies stay ordered), and what it reports.

final class CUDADevice: @unchecked Sendable {
    let driver: CUDADriver
    let ordinal: Int
    let handle: CUdevice
    let context: CUhandle?
    let stream: CUhandle?
    let name: String
    let computeCapability: (major: Int, minor: Int)
    let multiprocessors: Int
    let totalMemory: Int

    init(driver: CUDADriver, ordinal: Int) throws {
        self.driver = driver
        self.ordinal = ordinal
        var device: CUdevice = 0
        try driver.check(driver.cuDeviceGet(&device, Int32(ordinal)), "cuDeviceGet")
        handle = device
        var nameBytes = [CChar](repeating: 0, count: 256)
        try driver.check(driver.cuDeviceGetName(&nameBytes, 256, device), "cuDeviceGetName")
        name = stringFromCChars(nameBytes)
        func attribute(_ a: Int32) throws -> Int {
            var v: Int32 = 0
            try driver.check(driver.cuDeviceGetAttribute(&v, a, device), "cuDeviceGetAttribute")
            return Int(v)
        }
        computeCapability = (try attribute(CUDAAttribute.computeCapabilityMajor),
                             try attribute(CUDAAttribute.computeCapabilityMinor))
        multiprocessors = try attribute(CUDAAttribute.multiprocessorCount)
        var total = 0
        try driver.check(driver.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem")
        totalMemory = total
        var ctx: CUhandle?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain")
        context = ctx
        try driver.check(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        var s: CUhandle?
        try driver.check(driver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate")
        stream = s
    }

    /// The NVRTC architecture of this device's exact SM: "sm_90".
    var architecture: String { "sm_\(computeCapability.major)\(computeCapability.minor)" }

    /// Makes the context current on the calling thread (each stream worker is its own thread).
    func makeCurrent() throws {
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
    }

    func synchronize() throws {
        try makeCurrent()
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }
}
