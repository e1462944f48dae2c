// The `tessera` binary's one-malloc-arena setting takes effect (it must come
// before any thread but the main one allocates), seen through `--verbose`'s
// malloc line after a generation on a tiny random model.

import Foundation
import Tessera
import TesseraLM
import TesseraLMSelfTest
import XCTest

final class MallocArenaTests: XCTestCase {
    func testGenerateRunsOnOneMallocArena() throws {
        guard Memory.mallocStatistics() != nil else { throw XCTSkip("the C library reports no malloc statistics") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-arena-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 480,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 256, "tie_word_embeddings": true}
            """
        let model = try SyntheticModel.llama(config: config, bits: nil, dtype: .float32, scale: 0.1, seed: 3)
        try writeModelFolder(model, config: config, to: folder)

        let process = Process()
        process.executableURL = try tesseraBinary()
        process.arguments = [
            "generate", "-m", folder, "-p", "the number", "-n", "8", "--temp", "0", "--no-chat-template", "--verbose"
        ]
        // Two pool threads at least, so that a thread of its own would show as an arena.
        process.environment = ProcessInfo.processInfo.environment.merging(["TESSERA_NUM_THREADS": "2"]) { $1 }
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, stderr)

        guard let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix("malloc: ") }) else {
            return XCTFail("no malloc line in --verbose's output: \(stderr)")
        }
        let words = line.split(separator: " ")
        XCTAssertEqual(words.count > 2 ? Int(words[1]) : nil, 1, String(line))
        XCTAssertTrue(line.contains(" arena, heaps "), String(line))
    }

    func testMallocStatisticsCountAnOwnMappingBlock() throws {
        _ = Memory.releaseFreeMallocPages()  // the heap's top trimmed (below)
        guard let before = Memory.mallocStatistics() else {
            throw XCTSkip("the C library reports no malloc statistics")
        }
        XCTAssertGreaterThanOrEqual(before.arenas, 1)
        XCTAssertLessThanOrEqual(before.inUseBytes + before.freeBytes, before.heapBytes)
        // 256 MiB is past glibc's largest mmap threshold (32 MiB): a mapping of its
        // own, once the free space at the heap's top (which earlier tests in this
        // process can leave at up to twice that threshold) is trimmed: glibc
        // carves a block from the top when it is big enough, whatever its size.
        let size = 256 << 20
        guard let block = malloc(size) else { throw XCTSkip("no 256 MiB for the block") }
        let during = try XCTUnwrap(Memory.mallocStatistics())
        free(block)
        let after = try XCTUnwrap(Memory.mallocStatistics())
        XCTAssertGreaterThanOrEqual(during.mappedBytes - before.mappedBytes, size)
        XCTAssertGreaterThanOrEqual(during.mappedBytes - after.mappedBytes, size)
    }
}
