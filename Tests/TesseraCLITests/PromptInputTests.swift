// Where generate's prompt comes from, and what a chat line means.

import XCTest

@testable import TesseraCLI

final class PromptInputTests: XCTestCase {
    func testPromptTextIsUsedAsItIs() throws {
        XCTAssertEqual(try PromptInput.resolve(option: "hi\n", inputIsTerminal: false) { "piped" }, "hi\n")
    }

    func testDashReadsStandardInput() throws {
        XCTAssertEqual(try PromptInput.resolve(option: "-", inputIsTerminal: true) { "from stdin\n\n" }, "from stdin")
    }

    func testPipedInputIsThePromptWhenNoneIsGiven() throws {
        XCTAssertEqual(
            try PromptInput.resolve(option: nil, inputIsTerminal: false) { "line 1\nline 2\n" }, "line 1\nline 2")
        XCTAssertThrowsError(try PromptInput.resolve(option: nil, inputIsTerminal: true) { "unread" })
    }

    func testAnEmptyInputIsAnError() {
        XCTAssertThrowsError(try PromptInput.resolve(option: "-", inputIsTerminal: false) { " \n" }) { error in
            XCTAssertTrue("\(error)".contains("empty"), "\(error)")
        }
    }

    func testChatLines() {
        XCTAssertEqual(ChatLine(""), .empty)
        XCTAssertEqual(ChatLine("  "), .empty)
        XCTAssertEqual(ChatLine("/exit"), .exit)
        XCTAssertEqual(ChatLine("/quit "), .exit)
        XCTAssertEqual(ChatLine("/help"), .help)
        XCTAssertEqual(ChatLine("/reset"), .reset)
        XCTAssertEqual(ChatLine("/nope"), .unknownCommand("/nope"))
        XCTAssertEqual(ChatLine("/usr/bin is a path"), .message("/usr/bin is a path"))
        XCTAssertEqual(ChatLine("hello"), .message("hello"))
    }
}
