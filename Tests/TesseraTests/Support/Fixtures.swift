import Foundation
import XCTest

@testable import Tessera

/// Tests/Fixtures, found from this file's location (Package.swift declares no resources).
let fixtureRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// A fixture JSON file's top-level value.
func loadFixtureJSON(_ relativePath: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureRoot.appendingPathComponent(relativePath)))
}

/// An array stored as {dtype, shape, data: base64 of little-endian row-major bytes}.
struct StoredArray {
    let dtype: DType
    let shape: [Int]
    let bytes: [UInt8]

    init(_ object: Any) throws {
        guard let o = object as? [String: Any], let name = o["dtype"] as? String, let dtype = DType(name: name),
            let shape = o["shape"] as? [Int], let text = o["data"] as? String, let data = Data(base64Encoded: text)
        else { throw XCTSkip("malformed stored array: \(object)") }
        self.dtype = dtype
        self.shape = shape
        bytes = Array(data)
    }

    var tensor: Tensor { bytes.withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: dtype) } }
}

/// Asserts `actual` holds exactly `expected` (dtype, shape and bytes).
func assertIdentical(_ actual: Tensor, _ expected: StoredArray, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.dtype, expected.dtype, "\(what): dtype", file: file, line: line)
    XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
    XCTAssertEqual(actual.bytes(), expected.bytes, "\(what): values", file: file, line: line)
}

/// Runs a Python snippet (CI installs the packages it needs); its stdout.
func runPython(_ code: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", code]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        XCTFail("python failed: \(String(decoding: errData, as: UTF8.self))", file: file, line: line)
        return ""
    }
    return String(decoding: data, as: UTF8.self)
}

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
