// One CUDA device: its primary context, one CUDA stream per Tessera stream
// (stream 0's made up front, the others on first use), the events that order
// one stream after another, and what the device reports.

package final class CUDADevice: @unchecked Sendable {
    let driver: CUDADriver
    let ordinal: Int
    let handle: CUdevice
    let context: CUhandle?
    /// The CUDA stream of Tessera stream 0 (the default stream).
    let stream: CUhandle?
    private let lock = Lock()
    /// CUDA streams of Tessera streams 1, 2, ... by index, made on first use.
    private var streams: [Int: CUhandle] = [:]
    /// One event per writing stream, re-recorded for each cross-stream wait.
    private var fences: [Int: CUhandle] = [:]
    package let name: String
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
        computeCapability = (
            try attribute(CUDAAttribute.computeCapabilityMajor),
            try attribute(CUDAAttribute.computeCapabilityMinor)
        )
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

    /// The CUDA stream of Tessera stream `index` on this device.
    func stream(_ index: Int) throws -> CUhandle? {
        if index == 0 { return stream }
        let (s, older) = try lock.withLock { () -> (CUhandle?, [Int]) in
            if let s = streams[index] { return (s, []) }
            try makeCurrent()
            var s: CUhandle?
            try driver.check(driver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate")
            let older = [0] + streams.keys
            streams[index] = s
            return (s, older)
        }
        // Blocks freed earlier may still be in use on the older streams; the new one starts after them.
        for other in older { try order(after: other, before: index) }
        return s
    }

    /// Whether any Tessera stream but 0 has used this device.
    var usesSeveralStreams: Bool { lock.withLock { !streams.isEmpty } }

    /// The Tessera streams with a CUDA stream on this device.
    var streamIndices: [Int] { lock.withLock { [0] + streams.keys } }

    /// Makes work queued later on stream `reader` wait for all work queued so
    /// far on stream `writer` (an event recorded on one, waited on by the other).
    func order(after writer: Int, before reader: Int) throws {
        guard writer != reader else { return }
        let w = try stream(writer), r = try stream(reader)
        try makeCurrent()
        try lock.withLock {
            var event = fences[writer]
            if event == nil {
                var e: CUhandle?
                try driver.check(driver.cuEventCreate(&e, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
                fences[writer] = e
                event = e
            }
            // cuStreamWaitEvent takes the event's current record, so one event per writer serves every wait.
            try driver.check(driver.cuEventRecord(event, w), "cuEventRecord")
            try driver.check(driver.cuStreamWaitEvent(r, event, 0), "cuStreamWaitEvent")
        }
    }

    /// Waits for the work queued on Tessera stream `index` (default 0).
    package func synchronize(stream index: Int = 0) throws {
        let s = try stream(index)
        try makeCurrent()
        try driver.check(driver.cuStreamSynchronize(s), "cuStreamSynchronize")
    }
}
