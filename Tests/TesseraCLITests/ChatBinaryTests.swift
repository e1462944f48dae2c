// `tessera chat` as a user drives it: Ctrl-C (SIGINT) stops a reply and the
// chat goes on; a second Ctrl-C at the prompt leaves; Ctrl-D ends cleanly.

import Foundation
import TesseraLM
import XCTest

final class ChatBinaryTests: XCTestCase {
    /// A running `tessera chat`, its output collected as it comes.
    final class Chat: @unchecked Sendable {
        let process = Process()
        let input = Pipe()
        private let lock = NSLock()
        private var out = "", err = ""

        init(_ arguments: [String]) throws {
            process.executableURL = try tesseraBinary()
            process.arguments = ["chat"] + arguments
            let stdout = Pipe(), stderr = Pipe()
            process.standardInput = input
            process.standardOutput = stdout
            process.standardError = stderr
            // weak: a handler may still fire after the test released the chat.
            stdout.fileHandleForReading.readabilityHandler = { [weak self] h in
                let text = String(decoding: h.availableData, as: UTF8.self)
                guard let self else { return }
                self.lock.withLock { self.out += text }
            }
            // weak: a handler may still fire after the test released the chat.
            stderr.fileHandleForReading.readabilityHandler = { [weak self] h in
                let text = String(decoding: h.availableData, as: UTF8.self)
                guard let self else { return }
                self.lock.withLock { self.err += text }
            }
            try process.run()
        }

        var stdout: String { lock.withLock { out } }
        var stderr: String { lock.withLock { err } }

        func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

        /// Waits until `condition` holds on (stdout, stderr), up to `seconds`.
        func wait(_ seconds: Double, until condition: (String, String) -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if condition(stdout, stderr) { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return condition(stdout, stderr)
        }

        func exitStatus(within seconds: Double) -> Int32? {
            let end = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning {
                process.terminate()
                return nil
            }
            return process.terminationStatus
        }
    }

    private func model() throws -> String {
        guard let model = DefaultModel.cachedPath() else { throw XCTSkip("the default model is not cached") }
        return model
    }

    func testCtrlCStopsTheReplyAndTheChatGoesOn() throws {
        let chat = try Chat(["-m", try model(), "--temp", "0", "-n", "2000"])
        XCTAssertTrue(chat.wait(60) { out, _ in out.hasPrefix("> ") }, chat.stderr)
        chat.send("Count from 1 to 1000, one number per line.")
        // Some of the reply, then Ctrl-C.
        XCTAssertTrue(chat.wait(60) { out, _ in out.count > 20 }, chat.stderr)
        chat.process.interrupt()
        XCTAssertTrue(chat.wait(30) { _, err in err.contains("(stopped") }, chat.stderr)
        XCTAssertTrue(chat.process.isRunning)
        // The next message gets its own reply.
        let before = chat.stdout.count
        chat.send("Hi!")
        XCTAssertTrue(chat.wait(60) { out, _ in out.count > before + 4 && out.hasSuffix("\n> ") }, chat.stdout)
        chat.send("/exit")
        XCTAssertEqual(chat.exitStatus(within: 30), 0, chat.stderr)
        XCTAssertTrue(chat.stdout.hasSuffix("> "), chat.stdout)
    }

    func testTwoCtrlCsAtThePromptLeaveAndCtrlDEndsTheLine() throws {
        let model = try model()
        let chat = try Chat(["-m", model])
        XCTAssertTrue(chat.wait(60) { out, _ in out.hasPrefix("> ") }, chat.stderr)
        chat.process.interrupt()
        XCTAssertTrue(chat.wait(10) { out, _ in out.contains("Ctrl-C again") }, chat.stdout)
        XCTAssertTrue(chat.process.isRunning)
        chat.process.interrupt()
        XCTAssertEqual(chat.exitStatus(within: 10), 130)

        let ended = try Chat(["-m", model])
        XCTAssertTrue(ended.wait(60) { out, _ in out.hasPrefix("> ") }, ended.stderr)
        try ended.input.fileHandleForWriting.close()
        XCTAssertEqual(ended.exitStatus(within: 10), 0, ended.stderr)
        XCTAssertEqual(ended.stdout, "> \n")
    }
}
