// NVRTC: compiles the embedded CUDA C++ kernels at run time to CUBIN for one
// exact architecture (sm_XY). CUBIN, not PTX: NVRTC 13 emits PTX that older
// drivers reject, while a CUBIN for the device's SM loads on any driver that
// knows the SM.

/// The NVRTC functions Tessera calls, and compilation on top of them.
final class NVRTC: @unchecked Sendable {
    typealias Program = OpaquePointer
    let library: DynamicLibrary
    let nvrtcVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    let nvrtcGetErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    let nvrtcCreateProgram:
        @convention(c) (
            UnsafeMutablePointer<Program?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?
        ) -> Int32
    let nvrtcDestroyProgram: @convention(c) (UnsafeMutablePointer<Program?>) -> Int32
    let nvrtcCompileProgram: @convention(c) (Program?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let nvrtcGetCUBINSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Int32
    let nvrtcGetCUBIN: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Int32
    let nvrtcGetProgramLogSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Int32
    let nvrtcGetProgramLog: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Int32

    init(_ library: DynamicLibrary) throws {
        self.library = library
        nvrtcVersion = try library.function("nvrtcVersion")
        nvrtcGetErrorString = try library.function("nvrtcGetErrorString")
        nvrtcCreateProgram = try library.function("nvrtcCreateProgram")
        nvrtcDestroyProgram = try library.function("nvrtcDestroyProgram")
        nvrtcCompileProgram = try library.function("nvrtcCompileProgram")
        nvrtcGetCUBINSize = try library.function("nvrtcGetCUBINSize")
        nvrtcGetCUBIN = try library.function("nvrtcGetCUBIN")
        nvrtcGetProgramLogSize = try library.function("nvrtcGetProgramLogSize")
        nvrtcGetProgramLog = try library.function("nvrtcGetProgramLog")
    }

    /// "12.9"; the CUDA emulator's NVRTC (Tests/Support/cuda-emu) says "emulator-<id>"
    /// instead, so its modules never share a kernel cache key with real CUBINs.
    var version: String {
        typealias EmulatorVersion = @convention(c) () -> UnsafePointer<CChar>?
        if let emulator = try? library.function("tessera_emu_nvrtc_version", as: EmulatorVersion.self),
            let text = emulator()
        {
            return String(cString: text)
        }
        var major: Int32 = 0, minor: Int32 = 0
        guard nvrtcVersion(&major, &minor) == 0 else { return "unknown" }
        return "\(major).\(minor)"
    }

    /// The options every kernel is compiled with; `verbose` adds ptxas's
    /// register and spill report to the log.
    static func options(architecture: String, verbose: Bool) -> [String] {
        var options = ["--gpu-architecture=\(architecture)", "--std=c++17"]
        if verbose { options.append("--ptxas-options=-v") }
        return options
    }

    struct Output {
        let cubin: [UInt8]
        let log: String
    }

    /// Compiles `source` (file `name`; `headers`: file name → text for its
    /// `#include "..."`) to a CUBIN for `architecture` ("sm_80").
    /// Throws `deviceError` with the program log on a compile error.
    func compile(
        source: String, name: String, headers: [String: String], architecture: String, verbose: Bool = false
    ) throws -> Output {
        let headerNames = headers.keys.sorted()
        let cStrings =
            ([source, name] + headerNames.map { headers[$0]! } + headerNames
            + Self.options(architecture: architecture, verbose: verbose)).map { strdup($0)! }
        defer { cStrings.forEach { free($0) } }
        let h = headerNames.count
        let sources = cStrings[2..<(2 + h)].map { UnsafePointer($0) as UnsafePointer<CChar>? }
        let includeNames = cStrings[(2 + h)..<(2 + 2 * h)].map { UnsafePointer($0) as UnsafePointer<CChar>? }
        let options = cStrings[(2 + 2 * h)...].map { UnsafePointer($0) as UnsafePointer<CChar>? }

        var program: Program?
        try check(
            nvrtcCreateProgram(&program, cStrings[0], cStrings[1], Int32(h), sources, includeNames),
            "nvrtcCreateProgram")
        defer { _ = nvrtcDestroyProgram(&program) }
        let status = nvrtcCompileProgram(program, Int32(options.count), options)
        var logSize = 0
        _ = nvrtcGetProgramLogSize(program, &logSize)
        var logBytes = [CChar](repeating: 0, count: max(logSize, 1))
        _ = nvrtcGetProgramLog(program, &logBytes)
        let log = stringFromCChars(logBytes)
        guard status == 0 else {
            throw TesseraError.deviceError("NVRTC could not compile \(name) for \(architecture):\n\(log)")
        }
        var size = 0
        try check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize")
        var cubin = [CChar](repeating: 0, count: size)
        try check(nvrtcGetCUBIN(program, &cubin), "nvrtcGetCUBIN")
        return Output(cubin: cubin.map { UInt8(bitPattern: $0) }, log: log)
    }

    private func check(_ result: Int32, _ call: String) throws {
        guard result != 0 else { return }
        let text = nvrtcGetErrorString(result).map { String(cString: $0) } ?? "unknown"
        throw TesseraError.deviceError("\(call) failed: NVRTC error \(result) (\(text))")
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
