// The CI check that runs without a GPU: NVRTC compiles every embedded kernel
// file for sm_75, sm_80 and sm_90a, failing on any error or warning, and
// every kernel name the dispatch can ask for is in the CUBIN. ptxas's
// register/spill report goes to $TESSERA_NVRTC_LOG (default
// /tmp/tessera-nvrtc-kernels.log). NVRTC is found as at run time (PyPI wheel,
// TESSERA_NVRTC_PATH, /usr/local/cuda); without it the test skips, unless
// TESSERA_REQUIRE_NVRTC=1 (set by .ci/run), where it fails.

import Foundation
import XCTest

@testable import Tessera

final class CUDAKernelCompileTests: XCTestCase {
    static let architectures = ["sm_75", "sm_80", "sm_90a"]

    func nvrtcOrSkip() throws -> NVRTC {
        switch CUDALibrary.nvrtc.open() {
        case .success(let library):
            return try NVRTC(library)
        case .failure(let failure):
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_NVRTC"] == "1" {
                XCTFail("TESSERA_REQUIRE_NVRTC=1 but \(failure)")
            }
            throw XCTSkip("no NVRTC, kernels not compiled: \(failure)")
        }
    }

    /// Every kernel name CUDAKernelNames can produce.
    static func expectedKernelNames() -> [String] {
        var names: [String] = []
        let dtypes: [DType] = [.float32, .float16, .bfloat16, .int32, .bool]
        for t in dtypes {
            for op in UnaryOp.allCases {
                names += [t, .bool].compactMap { CUDAKernelNames.unary(op, input: t, output: $0) }
            }
            for op in BinaryOp.allCases {
                names += [t, .bool].compactMap { CUDAKernelNames.binary(op, input: t, output: $0) }
            }
            for op in ReduceOp.allCases { names += CUDAKernelNames.reduce(op, input: t, output: t).map { [$0] } ?? [] }
            for u in dtypes { names += CUDAKernelNames.asType(from: t, to: u).map { [$0] } ?? [] }
            names += [CUDAKernelNames.copy(t), CUDAKernelNames.select(t), CUDAKernelNames.arange(t)].compactMap { $0 }
        }
        names += CUDAKernelNames.all
        return Array(Set(names)).sorted()
    }

    func testEveryKernelCompilesWithoutWarnings() throws {
        let nvrtc = try nvrtcOrSkip()
        let logPath = ProcessInfo.processInfo.environment["TESSERA_NVRTC_LOG"] ?? "/tmp/tessera-nvrtc-kernels.log"
        var report = "NVRTC \(nvrtc.version) (\(nvrtc.library.path))\n"
        var symbols: [String: String] = [:]  // file → CUBIN bytes as Latin-1 text, for the name check
        for file in KernelFiles.kernels {
            for arch in Self.architectures {
                do {
                    let output = try nvrtc.compile(
                        source: KernelSources.files[file]!, name: file,
                        headers: KernelFiles.headers, architecture: arch, verbose: true)
                    report += "== \(file) \(arch): \(output.cubin.count) bytes CUBIN\n\(output.log)\n"
                    let problems = output.log.split(separator: "\n").filter {
                        $0.localizedCaseInsensitiveContains("warning") || $0.localizedCaseInsensitiveContains("error")
                    }
                    XCTAssertEqual(problems, [], "\(file) for \(arch)")
                    XCTAssertFalse(output.cubin.isEmpty)
                    if arch == "sm_75" {
                        symbols[file] = String(decoding: output.cubin.map { $0 < 128 ? $0 : 0 }, as: UTF8.self)
                    }
                } catch {
                    XCTFail("\(file) for \(arch): \(error)")
                    report += "== \(file) \(arch): FAILED\n\(error)\n"
                }
            }
        }
        try report.write(toFile: logPath, atomically: true, encoding: .utf8)
        for name in Self.expectedKernelNames() {
            let file = CUDAKernelNames.file(of: name)
            guard let text = symbols[file] else { XCTFail("\(name): no compiled \(file)"); continue }
            XCTAssertTrue(text.contains("\u{0}\(name)\u{0}"), "kernel \(name) is not defined in \(file)")
        }
    }
}
