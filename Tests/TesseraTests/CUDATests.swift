// The CUDA backend's host-side logic, and the NVRTC compile check of every
// kernel. None of this needs a GPU; NVRTC comes from the PyPI wheel
// (`pip install nvidia-cuda-nvrtc-cu12`), and the compile test skips without
// it unless TESSERA_REQUIRE_NVRTC=1 (CI sets it, so there it fails instead).

import Foundation
import XCTest

@testable import Tessera
import TesseraSelfTest

final class CUDAHostTests: XCTestCase {
    func testLaunchGeometry() {
        XCTAssertEqual(
            LaunchGeometry.elementwise(count: 1, multiprocessors: 132), LaunchGeometry(blocks: 1, threads: 256))
        XCTAssertEqual(LaunchGeometry.elementwise(count: 257, multiprocessors: 132).blocks, 2)
        // Large arrays stop at 16 blocks per multiprocessor (grid-stride loops).
        XCTAssertEqual(LaunchGeometry.elementwise(count: 1 << 30, multiprocessors: 132).blocks, 132 * 16)
        XCTAssertEqual(LaunchGeometry.elementwise(count: 0, multiprocessors: 0).blocks, 1)
        XCTAssertEqual(LaunchGeometry.reduction(outputs: 7), LaunchGeometry(blocks: 7, threads: 256))
    }

    func testLayoutCollapse() {
        // Contiguous operands: linear indexing.
        XCTAssertTrue(StridedLayout.collapse(shape: [2, 3, 4], strides: [[12, 4, 1], [12, 4, 1]]).isContiguous)
        // A broadcast row: [2, 3] with the second operand [3] broadcast on axis 0.
        let b = StridedLayout.collapse(shape: [2, 3], strides: [[3, 1], [0, 1]])
        XCTAssertEqual(b, StridedLayout(shape: [2, 3], strides: [[3, 1], [0, 1]]))
        // Size-1 axes drop, mergeable neighbours merge.
        let t = StridedLayout.collapse(shape: [4, 1, 2, 3], strides: [[1, 99, 12, 4]])
        XCTAssertEqual(t, StridedLayout(shape: [4, 6], strides: [[1, 4]]))
        // A transposed view stays strided.
        let tr = StridedLayout.collapse(shape: [3, 2], strides: [[1, 3]])
        XCTAssertEqual(tr, StridedLayout(shape: [3, 2], strides: [[1, 3]]))
        // Reductions keep an axis even when contiguous.
        XCTAssertEqual(
            StridedLayout.collapse(shape: [5], strides: [[1]], linear: false),
            StridedLayout(shape: [5], strides: [[1]]))
        XCTAssertEqual(StridedLayout.dims([2, 3]), [2, 3, 1, 1, 1, 1, 1, 1])
    }

    func testKernelArgumentsKeepValues() {
        let args = KernelArguments()
        args.add(int64: 7)
        args.add(int32: 3)
        args.add(dims: [4, 5])
        args.add(2.5)
        XCTAssertEqual(args.count, 4)
        args.withPointers { p in
            XCTAssertEqual(p[0]!.load(as: Int64.self), 7)
            XCTAssertEqual(p[1]!.load(as: Int32.self), 3)
            XCTAssertEqual(p[2]!.load(fromByteOffset: 8, as: Int64.self), 5)
            XCTAssertEqual(p[2]!.load(fromByteOffset: 16, as: Int64.self), 1)
            XCTAssertEqual(p[3]!.load(as: Double.self), 2.5)
        }
    }

    func testCacheKey() {
        let key = KernelCacheKey.make(
            file: "binary.cu", source: "a", headers: ["common.cuh": "h"],
            architecture: "sm_90", nvrtcVersion: "12.9")
        XCTAssertEqual(
            key,
            KernelCacheKey.make(
                file: "binary.cu", source: "a", headers: ["common.cuh": "h"],
                architecture: "sm_90", nvrtcVersion: "12.9"))
        XCTAssertTrue(key.hasPrefix("binary-") && key.hasSuffix("-sm_90-nvrtc12.9"), key)
        // Source, header, architecture and NVRTC version each change the key.
        for other in [
            KernelCacheKey.make(
                file: "binary.cu", source: "b", headers: ["common.cuh": "h"], architecture: "sm_90",
                nvrtcVersion: "12.9"),
            KernelCacheKey.make(
                file: "binary.cu", source: "a", headers: ["common.cuh": "g"], architecture: "sm_90",
                nvrtcVersion: "12.9"),
            KernelCacheKey.make(
                file: "binary.cu", source: "a", headers: ["common.cuh": "h"], architecture: "sm_80",
                nvrtcVersion: "12.9"),
            KernelCacheKey.make(
                file: "binary.cu", source: "a", headers: ["common.cuh": "h"], architecture: "sm_90",
                nvrtcVersion: "13.0")
        ] { XCTAssertNotEqual(key, other) }
        // The key's hash is SHA-256 (FIPS 180-2's test vectors; swift-crypto computes it).
        XCTAssertEqual(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertTrue(key.contains("-" + sha256Hex(["a", "common.cuh", "h"]) + "-"), key)
        XCTAssertEqual(KernelCacheKey.directory(environment: ["TESSERA_CUDA_CACHE": "/c"]), "/c")
        XCTAssertEqual(KernelCacheKey.directory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]), "/x/tessera/cuda")
        XCTAssertEqual(KernelCacheKey.directory(environment: ["HOME": "/h"]), "/h/.cache/tessera/cuda")
    }

    /// The generated Swift file holds exactly the .cu/.cuh files as they are now.
    func testEmbeddedKernelsMatchSources() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Tessera/Backends/CUDA/Kernels")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".cu") || $0.hasSuffix(".cuh") }
        XCTAssertEqual(Set(names), Set(KernelSources.files.keys), "run python3 Tools/embed_kernels.py")
        for name in names {
            var text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            while text.hasSuffix("\n") { text.removeLast() }
            XCTAssertEqual(KernelSources.files[name], text, "\(name) changed: run python3 Tools/embed_kernels.py")
        }
    }

    func testLibrarySearchOrder() {
        let nvrtc = CUDALibrary.nvrtc.candidates(
            environment: ["TESSERA_NVRTC_PATH": "/opt/my/libnvrtc.so.12"], sitePackages: ["/site"])
        XCTAssertEqual(
            nvrtc,
            [
                "/opt/my/libnvrtc.so.12",
                "/site/nvidia/cu13/lib/libnvrtc.so.13", "/site/nvidia/cu13/lib/libnvrtc.so.12",
                "/site/nvidia/cuda_nvrtc/lib/libnvrtc.so.13", "/site/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
                "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12",
                "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13",
                "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.12",
                "libnvrtc.so.13", "libnvrtc.so.12"
            ])
        // A folder in the variable is searched for the library's file names.
        XCTAssertEqual(
            CUDALibrary.driver.candidates(environment: ["TESSERA_CUDA_PATH": "/tmp"], sitePackages: ["/site"]),
            ["/tmp/libcuda.so.1", "libcuda.so.1"])
        XCTAssertEqual(CUDALibrary.driver.candidates(environment: [:], sitePackages: []), ["libcuda.so.1"])
        XCTAssertEqual(
            CUDALibrary.cublasLt.candidates(environment: [:], sitePackages: ["/s"]).prefix(4),
            [
                "/s/nvidia/cu13/lib/libcublasLt.so.13", "/s/nvidia/cu13/lib/libcublasLt.so.12",
                "/s/nvidia/cublas/lib/libcublasLt.so.13", "/s/nvidia/cublas/lib/libcublasLt.so.12"
            ])
    }

    func testKernelNames() {
        XCTAssertEqual(CUDAKernelNames.unary(.exp, input: .bfloat16, output: .bfloat16), "unary_exp_bf16")
        XCTAssertEqual(CUDAKernelNames.unary(.isNaN, input: .float16, output: .bool), "unary_isNaN_f16")
        XCTAssertNil(CUDAKernelNames.unary(.exp, input: .float64, output: .float64))
        XCTAssertNil(CUDAKernelNames.unary(.conjugate, input: .float32, output: .float32))
        XCTAssertEqual(CUDAKernelNames.binary(.less, input: .int32, output: .bool), "binary_less_i32")
        XCTAssertNil(CUDAKernelNames.binary(.leftShift, input: .int32, output: .int32))
        XCTAssertEqual(CUDAKernelNames.asType(from: .float32, to: .bfloat16), "astype_f32_bf16")
        XCTAssertEqual(CUDAKernelNames.reduce(.any, input: .bool, output: .bool), "reduce_any_b8")
        XCTAssertNil(CUDAKernelNames.reduce(.sum, input: .bool, output: .int32))
        XCTAssertEqual(CUDAKernelNames.select(.bfloat16), "select_2")
        XCTAssertEqual(CUDAKernelNames.file(of: "arange_f32"), "copy.cu")
        XCTAssertEqual(CUDAKernelNames.file(of: "astype_f32_i32"), "astype.cu")
    }

    /// docs/GPU.md names the primitive the dispatch's switch sends to the CPU
    /// for every dtype (`collective`) and the fused kernels it compiles.
    func testFallbackPrimitivesAreDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/GPU.md"), encoding: .utf8)
        let dispatch = try String(
            contentsOf: root.appendingPathComponent("Sources/Tessera/Backends/CUDA/CUDADispatch.swift"), encoding: .utf8
        )
        // The cases whose only statement is `return nil`: no kernel for any dtype.
        let lines = dispatch.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var always: [String] = []
        for (i, line) in lines.enumerated().dropLast() where line.hasPrefix("case .") && lines[i + 1] == "return nil" {
            always.append(String(line.dropFirst(6).prefix { $0.isLetter }))
        }
        XCTAssertEqual(always, ["collective"])
        for name in always + ["compiled"] { XCTAssertTrue(doc.contains("`\(name)`"), name) }
    }

    func testDeviceMemoryLimitIsNinetyPercentOfFree() {
        XCTAssertEqual(CUDAMemory.defaultLimit(freeBytes: 1000), 900)
    }

    /// Without a driver (as on CI) the GPU reports why and nothing crashes.
    func testNoGPUIsReportedCleanly() throws {
        try XCTSkipIf(CUDABackend.isAvailable, "a GPU is present")
        XCTAssertFalse(CUDABackend.unavailableReason.isEmpty)
        let info = DeviceInfo.all().first { $0.device == .gpu(0) }!
        XCTAssertNotNil(info.unavailableReason)
        // Building on the unavailable device is fine; evaluating throws the reason.
        let onGPU = withDevice(.gpu(0)) { exp(Tensor([1, 2] as [Float])) + 1 }
        XCTAssertThrowsError(try checkedEval([onGPU])) { error in
            guard case TesseraError.deviceUnavailable(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(reason, CUDABackend.unavailableReason)
        }
        let x = Tensor([1, 2] as [Float]).view()
        XCTAssertThrowsError(try CUDABackend.evaluate(.unary(.exp), inputs: [x], shape: [2], dtype: .float32)) {
            error in
            guard case TesseraError.deviceUnavailable = error else { return XCTFail("\(error)") }
        }
        guard case .failure = GPUSelfTest.run() else { return XCTFail("selftest ran without a GPU") }
    }
}
