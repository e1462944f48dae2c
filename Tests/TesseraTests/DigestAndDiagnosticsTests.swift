// The compile caches' keys (SHA-256 through swift-crypto) and the diagnostics
// logger (swift-log) the backends warn through.

import Logging
import XCTest

@testable import Tessera

final class DigestAndDiagnosticsTests: XCTestCase {
    /// Expected digests from Python's hashlib: sha256(b"abc\0"), sha256(b"ab\0c\0").
    func testCompileCacheKeyIsSHA256OfTheZeroTerminatedParts() {
        XCTAssertEqual(stableHash(["abc"]), "dc1114cd074914bd872cc1f9a23ec910ea2203bc79779ab2e17da25782a624fc")
        XCTAssertEqual(stableHash(["ab", "c"]), "629c2f14f654f026086f2aefe1855533d0897f49df86a19073be17b237361b09")
        XCTAssertNotEqual(stableHash(["ab", "c"]), stableHash(["a", "bc"]))
    }

    final class Captured: @unchecked Sendable {
        let lock = Lock()
        var messages: [(Logger.Level, String, Logger.Metadata?)] = []
    }

    struct CapturingHandler: LogHandler {
        let captured: Captured
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            captured.lock.withLock { captured.messages.append((event.level, "\(event.message)", event.metadata)) }
        }
    }

    /// A warning under a topic is logged once, at warning level, with its topic.
    func testWarnOnceLogsOneWarningPerTopic() {
        let captured = Captured()
        let saved = Diagnostics.logger
        Diagnostics.logger = Logger(label: "tessera", factory: { _ in CapturingHandler(captured: captured) })
        defer { Diagnostics.logger = saved }
        let topic = "test-\(UInt64.random(in: 0...UInt64.max))"
        XCTAssertTrue(Diagnostics.warnOnce(topic, "first"))
        XCTAssertFalse(Diagnostics.warnOnce(topic, "second"))
        let messages = captured.lock.withLock { captured.messages }
        XCTAssertEqual(messages.count, 1)
        XCTAssertEqual(messages.first?.0, .warning)
        XCTAssertEqual(messages.first?.1, "first")
        XCTAssertEqual(messages.first?.2?["topic"], "\(topic)")
    }
}
