// I/O readers under malformed input: ten thousand corruptions, huge shapes and
// missing files all give typed errors, never a crash.

import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// Malformed files never crash: every parser gets truncated, bit-flipped,
/// overwritten and garbage versions of real files and must either throw an
/// `IOError` or return tensors that read safely.
final class IOFuzzTests: XCTestCase {
    private struct Format {
        let name: String
        let file: String
        let parse: (OwnedBytes) throws -> [Tensor]
    }

    private let formats: [Format] = [
        Format(name: "safetensors", file: "sample.safetensors") {
            Array(try Safetensors.parse($0.bytes, owner: $0).tensors.values)
        },
        Format(name: "npy", file: "fortran.npy") { [try NPY.parse($0.bytes, owner: $0)] },
        Format(name: "npy0d", file: "scalar.npy") { [try NPY.parse($0.bytes, owner: $0)] },
        Format(name: "npz", file: "sample.npz") { Array(try NPZ.parse($0.bytes, owner: $0).values) },
        Format(name: "npzDeflated", file: "sample_compressed.npz") { Array(try NPZ.parse($0.bytes, owner: $0).values) },
        Format(name: "gguf", file: "sample.gguf") { bytes in
            let file = try GGUFFile(bytes: bytes.bytes, owner: bytes)
            return try file.tensorInfos.map { try file.tensor($0.name).dense }
        }
    ]

    private func owned(_ bytes: [UInt8]) -> OwnedBytes {
        let o = OwnedBytes(count: bytes.count)
        if !bytes.isEmpty { bytes.withUnsafeBytes { o.mutableBytes.copyMemory(from: $0) } }
        return o
    }

    func testTenThousandMalformedInputsGiveTypedErrors() throws {
        var rng = TestRNG(99)
        var cases = 0, rejected = 0
        let perFormat = 2000
        for format in formats {
            let original = Array(try Data(contentsOf: fixtureRoot.appendingPathComponent("io/\(format.file)")))
            // The unmodified file parses.
            XCTAssertNoThrow(try format.parse(owned(original)).forEach { _ = $0.bytes() }, format.name)
            for i in 0..<perFormat {
                var bytes = original
                switch i % 4 {
                case 0:  // truncation
                    bytes = Array(bytes.prefix(Int(rng.next() * Double(bytes.count))))
                case 1:  // bit flips
                    for _ in 0..<(1 + Int(rng.next() * 8)) {
                        let at = Int(rng.next() * Double(bytes.count))
                        bytes[at] ^= UInt8(1 << Int(rng.next() * 8))
                    }
                case 2:  // a run of random bytes over the header region
                    let start = Int(rng.next() * Double(Swift.min(bytes.count, 256)))
                    for j in start..<Swift.min(bytes.count, start + 1 + Int(rng.next() * 16)) {
                        bytes[j] = UInt8(rng.next() * 256)
                    }
                default:  // garbage after a valid prefix
                    let keep = Int(rng.next() * Double(Swift.min(bytes.count, 64)))
                    bytes = Array(bytes.prefix(keep)) + (0..<Int(rng.next() * 512)).map { _ in UInt8(rng.next() * 256) }
                }
                cases += 1
                do {
                    for t in try format.parse(owned(bytes)) { _ = t.bytes() }
                } catch is IOError {
                    rejected += 1
                } catch {
                    XCTFail("\(format.name) case \(i): untyped error \(error)")
                }
            }
        }
        XCTAssertGreaterThanOrEqual(cases, 10_000)
        XCTAssertGreaterThan(rejected, cases / 2, "most mutations must be caught")
        print("IO fuzz: \(cases) malformed inputs, \(rejected) rejected with IOError, none crashed")
    }

    /// An empty shape whose other dimensions multiply past Int (the npy fuzz
    /// target's finding, Fortran order: it trapped in the row-major copy).
    func testEmptyShapesWithHugeDimensionsAreRefused() throws {
        func npy(_ shape: String, fortran: Bool) -> [UInt8] {
            var header = Array(
                "{'descr': '<f8', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }".utf8)
            while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
            header.append(0x0A)
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header
        }
        for shape in ["(0, 0, 5055555555555555555)", "(0, 4294967296, 4294967296)", "(5055555555555555555, 0)"] {
            for fortran in [false, true] {
                let o = owned(npy(shape, fortran: fortran))
                XCTAssertThrowsError(try NPY.parse(o.bytes, owner: o), shape) {
                    XCTAssertTrue($0 is IOError, "\($0)")
                }
            }
        }
        // An empty shape within bounds still reads, as numpy writes it.
        let o = owned(npy("(0, 3)", fortran: true))
        let empty = try NPY.parse(o.bytes, owner: o)
        XCTAssertEqual(empty.shape, [0, 3])
        XCTAssertEqual(empty.toArray(Double.self), [])
    }

    func testMissingFilesAndDirectoriesGiveTypedErrors() {
        XCTAssertThrowsError(try Safetensors.load("/nonexistent/x.safetensors")) { XCTAssertTrue($0 is IOError) }
        XCTAssertThrowsError(try GGUFFile.load(fixtureRoot.path)) {
            XCTAssertEqual($0 as? IOError, .notRegularFile(path: fixtureRoot.path, kind: "a directory"))
        }
        XCTAssertThrowsError(try NPZ.load("/dev/null")) { XCTAssertTrue($0 is IOError) }
        XCTAssertThrowsError(try Safetensors.save(["x": Tensor(1)], to: "/nonexistent/dir/x.safetensors")) {
            XCTAssertTrue($0 is IOError)
        }
    }
}
