// `tessera convert` in blocks of rows: every big tensor is read, quantized (or
// cast) and written a block of rows at a time, so no full float copy of it
// exists. The written files must be byte for byte those of converting each
// tensor whole (TESSERA_CONVERT_BLOCK=0), for GGUF, dense-folder and
// quantized-folder inputs, quantized and dense outputs. And the streamed
// safetensors writer's pieces: written in order, refused when they do not
// make the planned tensor. And each mapped input tensor's pages returned to
// the kernel once it is converted, the values still readable.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

final class ConvertStreamingTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func output() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-stream-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// The bytes of every file `convert` writes into a folder, converted with
    /// `TESSERA_CONVERT_BLOCK` set to `block`.
    func converted(block: Int, _ convert: (String) throws -> Void) throws -> [String: Data] {
        setenv("TESSERA_CONVERT_BLOCK", String(block), 1)
        defer { unsetenv("TESSERA_CONVERT_BLOCK") }
        let out = output()
        try convert(out)
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: out) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
        }
        return files
    }

    /// Blocks of 100 weights (a row or two of the fixtures' matrices: every
    /// matrix in several blocks, the last one short) write the same files as
    /// whole tensors.
    func testBlocksOfRowsWriteTheSameBytesAsWholeTensors() throws {
        let gguf = Fixtures.fixture("llama_gguf") + "/model.gguf"
        let cases: [(String, (String) throws -> Void)] = [
            (
                "GGUF, 4-bit with 8-bit embeddings",
                { try ModelConverter.convert(model: gguf, output: $0, bits: 4, groupSize: 32) }
            ),
            (
                "GGUF, mixed_3_6",
                { try ModelConverter.convert(model: gguf, output: $0, groupSize: 32, recipe: .mixed_3_6) }
            ),
            ("GGUF, dense float16", { try ModelConverter.convert(model: gguf, output: $0, dense: .float16) }),
            (
                "folder, 4-bit",
                { try ModelConverter.convert(model: Fixtures.fixture("mistral"), output: $0, groupSize: 32) }
            ),
            (
                "quantized folder, 8-bit",
                {
                    try ModelConverter.convert(
                        model: Fixtures.fixture("qwen3_mlx_q4"), output: $0, bits: 8, groupSize: 32)
                }
            ),
            (
                "quantized folder, dense bfloat16",
                {
                    try ModelConverter.convert(model: Fixtures.fixture("qwen3_mlx_q4"), output: $0, dense: .bfloat16)
                }
            )
        ]
        for (name, convert) in cases {
            let whole = try converted(block: 0, convert)
            let blocked = try converted(block: 100, convert)
            XCTAssertNotNil(whole["model.safetensors"], name)
            XCTAssertEqual(Set(whole.keys), Set(blocked.keys), name)
            for (file, bytes) in whole { XCTAssertTrue(blocked[file] == bytes, "\(name): \(file) differs") }
        }
    }

    func testRowBlocksCoverTheRowsOnce() {
        XCTAssertEqual(ConversionPlan.rowBlocks([10, 64], blockElements: 200), [0..<3, 3..<6, 6..<9, 9..<10])
        XCTAssertEqual(ConversionPlan.rowBlocks([3, 1000], blockElements: 10), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(ConversionPlan.rowBlocks([5, 4], blockElements: .max), [0..<5])
        XCTAssertEqual(ConversionPlan.rowBlocks([0, 4], blockElements: 8), [0..<0])
    }

    /// Pieces of rows are written one after another as the planned tensor; pieces
    /// that do not make it (rows short, another width, another dtype) are an
    /// error that leaves no file.
    func testTheWriterJoinsPiecesAndRefusesWrongOnes() throws {
        let values = Tensor((0..<24).map { Float($0) }, shape: [6, 4])
        let plan = [Safetensors.PlannedTensor(name: "w", dtype: .float32, shape: [6, 4])]
        let path = output() + ".safetensors"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(plan: plan, to: path, produce: { _ in [values[0..<1], values[1..<5], values[5..<6]] })
        let read = try Safetensors.load(path).tensors
        XCTAssertEqual(read["w"]?.toArray(Float.self), values.toArray(Float.self))
        try FileManager.default.removeItem(atPath: path)
        let wrong: [[Tensor]] = [
            [values[0..<2], values[3..<6]],
            [values[0..<3], values[3..<6, 0..<2]],
            [values[0..<3], values[3..<6].asType(.float16)],
            []
        ]
        for pieces in wrong {
            XCTAssertThrowsError(try Safetensors.save(plan: plan, to: path, produce: { _ in pieces })) {
                XCTAssertTrue($0 is IOError, "\($0)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        }
    }

    /// The resident bytes of this process's mappings of `path` (/proc/self/smaps' Rss), or nil off Linux.
    func residentBytes(ofMappingsOf path: String) -> Int? {
        // Read to the end (a /proc file's size is 0, so a sized read gets nothing).
        guard let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile(), !data.isEmpty
        else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        var total = 0, inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), !first.hasSuffix(":") {
                // By file name: the mapping line shows the path with symbolic links resolved.
                inside = line.hasSuffix("/" + (path.split(separator: "/").last.map(String.init) ?? path))
            } else if inside, fields.first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
                total += kb * 1024
            }
        }
        return total
    }

    /// A tensor viewing a mapped safetensors file: its pages leave the resident
    /// set when released, and reading it again gives the same values (the file's
    /// bytes faulted back in). A computed tensor and a lazy one release nothing.
    func testMappedPagesAreReleasedAndStayReadable() throws {
        let values = (0..<(256 * 1024)).map { Float($0 % 1009) - 500 }  // 1 MiB
        let path = output() + ".safetensors"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(["w": Tensor(values, shape: [256, 1024])], to: path)
        let w = try XCTUnwrap(Safetensors.load(path).tensors["w"])
        XCTAssertEqual(w.toArray(Float.self), values)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let before = try XCTUnwrap(residentBytes(ofMappingsOf: path), "no /proc/self/smaps")
        XCTAssertGreaterThanOrEqual(before, values.count * 4 - 2 * page)
        let released = w.releaseMappedPages()
        XCTAssertGreaterThanOrEqual(released, values.count * 4 - 2 * page)
        XCTAssertEqual(released % page, 0)
        let after = try XCTUnwrap(residentBytes(ofMappingsOf: path))
        XCTAssertLessThanOrEqual(after, before - released + page, "before \(before), released \(released)")
        XCTAssertEqual(w.toArray(Float.self), values)
        let computed = w * 2
        XCTAssertEqual(computed.releaseMappedPages(), 0)  // lazy: nothing to release
        try checkedEval([computed])
        XCTAssertEqual(computed.releaseMappedPages(), 0)  // computed: not a mapping
    }

    /// The plan releases each input once it is no longer read: a quantized
    /// layer's weight once its blocks are computed, a tensor written as it is
    /// only after the writer has written it; each exactly once.
    func testThePlanReleasesEachInputOnceConverted() throws {
        var events: [String] = []
        func source(_ name: String, _ shape: [Int]) -> ConversionSource {
            let t = Tensor((0..<shape.reduce(1, *)).map { Float($0 % 7) - 3 }, shape: shape)
            return ConversionSource(
                shape: shape, dtype: .float32, make: { t }, open: { { rows in t[rows] } },
                release: { events.append("release " + name) })
        }
        let plan = ConversionPlan(
            quantizing: [
                "a.weight": source("a.weight", [4, 64]), "b.weight": source("b.weight", [4, 64]),
                "norm.weight": source("norm.weight", [64])
            ], groupSize: 32, bits: { _ in 4 })
        let path = output() + ".safetensors"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(
            plan: plan.entries, to: path, produce: plan.produce,
            written: { entry, _ in
                events.append("written " + entry.name)
                plan.written(entry)
            })
        XCTAssertEqual(
            events,
            [
                "release a.weight", "written a.biases", "written a.scales", "written a.weight",
                "release b.weight", "written b.biases", "written b.scales", "written b.weight",
                "written norm.weight", "release norm.weight"
            ])
    }
}
