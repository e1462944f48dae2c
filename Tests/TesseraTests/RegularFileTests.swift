// Readers refuse what is not a regular file before open() can block on it
// (issue 18: a FIFO passed as a model file hung the loader). Each case is
// made here: a FIFO with no writer, a directory, /dev/null. A reader that
// still blocks fails the test after a few seconds instead of hanging it.

import Foundation
import XCTest

@testable import Tessera

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on another thread; nil when it did not return within `seconds`.
func finishes<T: Sendable>(within seconds: Double, _ body: @escaping @Sendable () -> T) -> T? {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?
    Thread.detachNewThread {
        result = body()
        done.signal()
    }
    return done.wait(timeout: .now() + seconds) == .success ? result : nil
}

final class RegularFileTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "tessera-regular-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func fifo(_ name: String) throws -> String {
        let path = folder + "/" + name
        guard mkfifo(path, 0o644) == 0 else { throw XCTSkip("mkfifo failed: errno \(errno)") }
        return path
    }

    /// The error each reader throws for `path`, as text ("no error" when it loads).
    private func errors(_ path: String) -> [String] {
        let readers: [(String, @Sendable (String) throws -> Void)] = [
            ("gguf", { _ = try GGUFFile.load($0) }),
            ("safetensors", { _ = try Safetensors.load($0) }),
            ("npy", { _ = try NPY.load($0) }),
            ("npz", { _ = try NPZ.load($0) }),
            ("bytes", { _ = try readRegularFile($0) })
        ]
        return readers.map { name, read in
            let outcome = finishes(within: 5) { () -> String in
                do {
                    try read(path)
                    return "no error"
                } catch let error as IOError {
                    if case .notRegularFile = error { return "notRegularFile" }
                    return "\(error)"
                } catch {
                    return "\(error)"
                }
            }
            return "\(name): \(outcome ?? "blocked")"
        }
    }

    func testFIFOsDirectoriesAndDevicesAreRefusedWithoutBlocking() throws {
        let expected = ["gguf", "safetensors", "npy", "npz", "bytes"].map { "\($0): notRegularFile" }
        XCTAssertEqual(errors(try fifo("model.gguf")), expected)
        let directory = folder + "/model.safetensors"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        XCTAssertEqual(errors(directory), expected)
        XCTAssertEqual(errors("/dev/null"), expected)
        XCTAssertEqual(
            "\(IOError.notRegularFile(path: "m.gguf", kind: "a FIFO (named pipe)"))",
            "cannot open m.gguf: it is a FIFO (named pipe), not a regular file")
    }

    func testRegularFilesStillRead() throws {
        let path = folder + "/small.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        XCTAssertEqual(try readRegularFile(path), [1, 2, 3])
        XCTAssertThrowsError(try readRegularFile(path, maxBytes: 2))
        XCTAssertThrowsError(try readRegularFile(folder + "/missing")) {
            guard case .cannotOpen = $0 as? IOError else { return XCTFail("\($0)") }
        }
    }
}
