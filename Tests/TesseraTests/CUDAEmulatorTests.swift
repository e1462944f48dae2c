// The GPU path without a GPU: Tests/Support/cuda-emu builds a CUDA driver and NVRTC
// emulator with the host C++ compiler, and `tessera selftest`'s table runs
// through it (kernels compiled, loaded and launched; device memory, copies and
// the dispatch all as on a GPU), each op compared with the CPU backend.
// Emulator results are not GPU results (docs/GPU.md).
// Skips without a C++ compiler unless TESSERA_REQUIRE_CUDA_EMU=1 (CI), where
// it fails instead.

import Foundation
import XCTest

@testable import Tessera
import TesseraSelfTest

final class CUDAEmulatorTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let childVariable = "TESSERA_CUDA_EMU_SELFTEST_CHILD"

    struct Output {
        let status: Int32
        let text: String
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, text: String(decoding: data, as: UTF8.self))
    }

    /// Builds the emulator (a no-op when up to date); its folder.
    func buildEmulator() throws -> String {
        let required = ProcessInfo.processInfo.environment["TESSERA_REQUIRE_CUDA_EMU"] == "1"
        let compiler = try Self.run("/bin/sh", ["-c", "command -v ${CXX:-c++}"])
        guard compiler.status == 0 else {
            if required { XCTFail("TESSERA_REQUIRE_CUDA_EMU=1 but there is no C++ compiler (c++ or $CXX)") }
            throw XCTSkip("no C++ compiler: the CUDA emulator is not built")
        }
        let folder = Self.root.appendingPathComponent(".build/cuda-emu").path
        let build = try Self.run(
            "/bin/bash", [Self.root.appendingPathComponent("Tests/Support/cuda-emu/build.sh").path, folder])
        XCTAssertEqual(build.status, 0, build.text)
        guard build.status == 0 else { throw XCTSkip("the emulator did not build") }
        return folder
    }

    /// The emulator's own checks: results of shuffles, barriers, shared
    /// memory and PTX conversions, and the bugs it must report.
    func testEmulatorChecks() throws {
        let folder = try buildEmulator()
        let check = try Self.run("\(folder)/emu_check", [folder])
        XCTAssertEqual(check.status, 0, check.text)
        XCTAssertTrue(check.text.contains("passed: 0 failed"), check.text)
    }

    /// `tessera selftest` through the emulator, in a child process (the CUDA
    /// backend is probed once per process, with the environment it starts with).
    func testSelfTestThroughEmulator() throws {
        let (output, rows) = try selfTestInChild()
        XCTAssertEqual(output.status, 0, output.text)
        XCTAssertFalse(rows.isEmpty, output.text)
        XCTAssertEqual(rows.filter { !$0.hasPrefix("selftest-row ok") }, [])
    }

    /// The streams case with kernels deferred in their CUDA stream until
    /// something synchronizes with it (TESSERA_CUDA_EMU_DEFER_KERNELS): a
    /// consumer on stream B that did not wait for producer stream A's event
    /// would read A's output before A's kernels ran.
    func testStreamsWithDeferredKernelsThroughEmulator() throws {
        let (output, rows) = try selfTestInChild([
            "TESSERA_SELFTEST_FILTER": "streams", "TESSERA_CUDA_EMU_DEFER_KERNELS": "1"
        ])
        XCTAssertEqual(output.status, 0, output.text)
        XCTAssertEqual(rows.count, 1, output.text)
        XCTAssertEqual(rows.filter { !$0.hasPrefix("selftest-row ok") }, [])
    }

    /// Runs testSelfTestInChild in a child process on the emulator (plus
    /// `environment`), returning its output and its printed selftest rows.
    private func selfTestInChild(_ environment: [String: String] = [:]) throws
        -> (output: Output, rows: [Substring])
    {
        let folder = try buildEmulator()
        let executable = Bundle.main.executablePath ?? ProcessInfo.processInfo.arguments[0]
        let output = try Self.run(
            executable, ["TesseraTests.CUDAEmulatorTests/testSelfTestInChild"],
            environment: [
                Self.childVariable: "1",
                "TESSERA_CUDA_PATH": "\(folder)/libcuda_emu.so",
                "TESSERA_NVRTC_PATH": "\(folder)/libnvrtc_emu.so",
                "TESSERA_CUBLASLT_PATH": "\(folder)/libcublasLt_emu.so",
                "TESSERA_CUDA_CACHE": "\(folder)/cache"
            ].merging(environment) { _, new in new })
        let rows = output.text.split(separator: "\n").filter { $0.hasPrefix("selftest-row ") }
        print(rows.joined(separator: "\n"))
        return (output, rows)
    }

    /// The child: only runs under testSelfTestThroughEmulator (and the test above).
    func testSelfTestInChild() throws {
        guard ProcessInfo.processInfo.environment[Self.childVariable] == "1" else {
            throw XCTSkip("runs only as testSelfTestThroughEmulator's child process")
        }
        guard let context = CUDABackend.context else {
            return XCTFail("the emulator did not load: \(CUDABackend.unavailableReason)")
        }
        XCTAssertEqual(context.device.name, "Tessera CUDA emulator")
        XCTAssertTrue(context.nvrtc.version.hasPrefix("emulator-"), context.nvrtc.version)
        XCTAssertNotNil(context.cublasLt, "libcublasLt_emu.so did not load")
        switch GPUSelfTest.run(filter: ProcessInfo.processInfo.environment["TESSERA_SELFTEST_FILTER"]) {
        case .failure(let error):
            XCTFail("\(error)")
        case .success(let rows):
            XCTAssertFalse(rows.isEmpty)
            for row in rows {
                print("selftest-row \(row)")
                XCTAssertTrue(row.passed, "\(row)")
            }
        }
    }
}
