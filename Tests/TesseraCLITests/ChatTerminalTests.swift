// `tessera chat` on a pseudo-terminal, as a user at a keyboard drives it: the
// terminal's own line discipline turns the typed Ctrl-C into SIGINT for the
// chat (its controlling terminal) and Ctrl-D at an empty line into end of
// input. Checked: /help, a reply stopped by Ctrl-C with the chat going on,
// /reset's confirmation, Ctrl-C at the prompt (a hint; a second one leaves
// with status 130), and Ctrl-D ending on a clean line with status 0.

import Foundation
import TesseraLM
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

final class ChatTerminalTests: XCTestCase {
    /// `tessera chat` started in a new session whose controlling terminal is a
    /// fresh pseudo-terminal; the test holds the terminal's other end.
    final class Terminal {
        let master: Int32
        private(set) var pid: pid_t = 0
        private var output: [UInt8] = []
        private var status: Int32?

        init(_ arguments: [String]) throws {
            // posix_openpt/unlockpt/ptsname as glibc does them (Swift's Glibc does not export them):
            // the multiplexer, unlock the terminal (TIOCSPTLCK 0), ask its number (TIOCGPTN).
            master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            var unlock: Int32 = 0, number: UInt32 = 0
            guard master >= 0, ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
                throw XCTSkip("no pseudo-terminal: \(String(cString: strerror(errno)))")
            }
            let terminalPath = "/dev/pts/\(number)"
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            // Opened after the new session starts (glibc: setsid, then the file actions), so the
            // terminal becomes the chat's controlling terminal, with the chat in the foreground.
            posix_spawn_file_actions_addopen(&actions, 0, terminalPath, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            let newSession: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc's spawn.h, a GNU extension)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            sigaddset(&defaults, SIGINT)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            posix_spawnattr_setsigmask(&attributes, &unblocked)
            posix_spawnattr_setflags(&attributes, Int16(newSession | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
            let binary = try tesseraBinary().path
            let argv: [UnsafeMutablePointer<CChar>?] = ([binary, "chat"] + arguments).map { strdup($0) } + [nil]
            let environment = ProcessInfo.processInfo.environment.map { strdup($0.key + "=" + $0.value) } + [nil]
            defer { (argv + environment).forEach { free($0) } }
            let rc = posix_spawn(&pid, binary, &actions, &attributes, argv, environment)
            guard rc == 0 else {
                close(master)
                throw XCTSkip("cannot start \(binary): \(String(cString: strerror(rc)))")
            }
        }

        deinit {
            if pid > 0, status == nil {
                kill(pid, SIGKILL)
                var s: Int32 = 0
                waitpid(pid, &s, 0)
            }
            close(master)
        }

        /// What the terminal has shown so far (output and the echo of what was typed), read without blocking.
        var screen: String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                var ready = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 0) > 0, ready.revents & Int16(POLLIN) != 0 else { break }
                let n = read(master, &buffer, buffer.count)
                guard n > 0 else { break }
                output += buffer[0..<n]
            }
            return String(decoding: output, as: UTF8.self)
        }

        /// Types `keys` (a line ends with "\r", Enter).
        func type(_ keys: String) {
            let bytes = Array(keys.utf8)
            _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
        }

        /// Waits until `condition` holds on the screen after `offset` characters, up to `seconds`.
        func wait(_ seconds: Double, after offset: Int = 0, until condition: (Substring) -> Bool) -> Bool {
            let clock = ContinuousClock(), end = clock.now + .milliseconds(Int(seconds * 1000))
            repeat {
                let text = screen
                if condition(text.dropFirst(offset)) { return true }
                if exitStatus(within: 0) != nil { return condition(screen.dropFirst(offset)) }
                usleep(50_000)
            } while clock.now < end
            return false
        }

        /// The exit status (128 + signal when killed by one), nil while it runs after `seconds`.
        func exitStatus(within seconds: Double) -> Int32? {
            if let status { return status }
            let clock = ContinuousClock(), end = clock.now + .milliseconds(Int(seconds * 1000))
            repeat {
                var s: Int32 = 0
                if waitpid(pid, &s, WNOHANG) == pid {
                    let signal = s & 0x7F
                    status = signal == 0 ? (s >> 8) & 0xFF : 128 + signal
                    _ = screen
                    return status
                }
                if seconds > 0 { usleep(50_000) }
            } while clock.now < end
            return nil
        }
    }

    private func model() throws -> String {
        guard let model = DefaultModel.cachedPath() else {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the default model is not cached")
            }
            throw XCTSkip("the default model is not cached")
        }
        return model
    }

    func testTheChatAtAKeyboard() throws {
        let chat = try Terminal(["-m", try model(), "--temp", "0", "-n", "2000"])
        XCTAssertTrue(chat.wait(90) { $0.hasSuffix("> ") }, chat.screen)

        var mark = chat.screen.count
        chat.type("/help\r")
        XCTAssertTrue(
            chat.wait(10, after: mark) { $0.contains("/reset forgets the conversation") && $0.hasSuffix("> ") },
            chat.screen)

        // A long reply, stopped by Ctrl-C typed at the terminal; the chat stays and prompts again.
        mark = chat.screen.count
        chat.type("Count from 1 to 1000, one number per line.\r")
        let typed = "Count from 1 to 1000, one number per line.\r\n".count  // the echo
        XCTAssertTrue(chat.wait(90, after: mark) { $0.count > typed + 20 }, chat.screen)
        chat.type("\u{03}")
        XCTAssertTrue(chat.wait(30, after: mark) { $0.contains("(stopped") && $0.hasSuffix("> ") }, chat.screen)
        XCTAssertNil(chat.exitStatus(within: 0), chat.screen)

        mark = chat.screen.count
        chat.type("/reset\r")
        XCTAssertTrue(
            chat.wait(10, after: mark) { $0.contains("(the conversation is forgotten)") && $0.hasSuffix("> ") },
            chat.screen)

        // Ctrl-C at the prompt: a hint, still running; a second one leaves (130, as a shell reports SIGINT).
        mark = chat.screen.count
        chat.type("\u{03}")
        XCTAssertTrue(chat.wait(10, after: mark) { $0.contains("Ctrl-C again") }, chat.screen)
        XCTAssertNil(chat.exitStatus(within: 0.3), chat.screen)
        chat.type("\u{03}")
        XCTAssertEqual(chat.exitStatus(within: 10), 130, chat.screen)

        // Ctrl-D at an empty prompt: the prompt's line is ended, status 0.
        let ended = try Terminal(["-m", try model()])
        XCTAssertTrue(ended.wait(90) { $0.hasSuffix("> ") }, ended.screen)
        ended.type("\u{04}")
        XCTAssertEqual(ended.exitStatus(within: 10), 0, ended.screen)
        XCTAssertTrue(ended.screen.hasSuffix("> \r\n"), ended.screen)
    }
}
