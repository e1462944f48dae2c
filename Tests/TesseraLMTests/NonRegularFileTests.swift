// Model and tokenizer loading refuse a FIFO or a directory where a file is
// expected, with a typed error instead of blocking in open() (issue 18).
// A loader that still blocks fails the test after a few seconds.

import Foundation
import Tessera
import XCTest

@testable import TesseraLM

#if canImport(Glibc)
    import Glibc
#endif

final class NonRegularFileTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "tessera-nonregular-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// What `body` threw, as text; "blocked" when it did not return within 5 s.
    private func outcome(_ body: @escaping @Sendable () throws -> Void) -> String {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var text = "no error"
        Thread.detachNewThread {
            do { try body() } catch { text = "\(error)" }
            done.signal()
        }
        return done.wait(timeout: .now() + 5) == .success ? text : "blocked"
    }

    private func makeFIFO(_ path: String) throws {
        guard mkfifo(path, 0o644) == 0 else { throw XCTSkip("mkfifo failed: errno \(errno)") }
    }

    func testModelFileThatIsAFIFO() throws {
        let path = folder + "/model.gguf"
        try makeFIFO(path)
        let text = outcome { _ = try ModelLoader.load(path) }
        XCTAssertTrue(text.contains("FIFO"), text)
    }

    func testModelFolderWithAFIFOConfigOrADirectoryShard() throws {
        try makeFIFO(folder + "/config.json")
        let fifoConfig = outcome { [folder] in _ = try ModelLoader.load(folder) }
        XCTAssertTrue(fifoConfig.contains("FIFO"), fifoConfig)

        let other = folder + "/second"
        try FileManager.default.createDirectory(atPath: other + "/model.safetensors", withIntermediateDirectories: true)
        let config =
            #"{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "intermediate_size": 16,"#
            + #" "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16, "rms_norm_eps": 1e-5}"#
        XCTAssertTrue(FileManager.default.createFile(atPath: other + "/config.json", contents: Data(config.utf8)))
        let directoryShard = outcome { _ = try ModelLoader.load(other) }
        XCTAssertTrue(directoryShard.contains("is a directory"), directoryShard)
    }

    func testTokenizerFilesThatAreFIFOs() throws {
        try makeFIFO(folder + "/tokenizer.json")
        let text = outcome { [folder] in _ = try Tokenizer(directory: folder) }
        XCTAssertTrue(text.contains("FIFO"), text)
    }
}
