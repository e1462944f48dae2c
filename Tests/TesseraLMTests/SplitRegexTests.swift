// The split-pattern engine for regexes the tokenizer does not know by heart
// (SplitRegexParser + SplitRegexVM): linear time on the patterns that make a
// backtracking engine hang (issue 18), the same matches as the hand-written
// GPT-2 / Llama 3 / Qwen2 scanners on random text, and typed refusals of
// what it does not run (backreferences, lookbehind, unbounded lookahead).

import Foundation
import XCTest

@testable import TesseraLM

final class SplitRegexTests: XCTestCase {
    private func ranges(_ pattern: String, _ text: String) throws -> [Range<Int>] {
        try RegexSplitter(source: pattern).matches(Array(text.unicodeScalars))
    }

    private func strings(_ pattern: String, _ text: String) throws -> [String] {
        let scalars = Array(text.unicodeScalars)
        return try ranges(pattern, text).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    func testCatastrophicPatternsRunInLinearTime() throws {
        let json = #"""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "aa": 2}, "merges": ["a a"]},
             "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated"}}
            """#
        let tokenizer = try Tokenizer(tokenizerJSON: Array(json.utf8))
        let n = 50_000
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: n) + "b").count, n / 2 + 1)
            XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: n)).count, n / 2)
        }
        XCTAssertLessThan(elapsed, .seconds(5), "(a+)+$ over \(n) scalars")
        // Quadratic rescans (the preferred branch scans to the end in vain at every start) stop at
        // the budget: the text is covered, in order, without overlaps.
        let rescans = try ranges("a[^z]*z|a", String(repeating: "a", count: 20_000))
        XCTAssertEqual(rescans.first, 0..<1)
        XCTAssertEqual(rescans.last?.upperBound, 20_000)
        XCTAssertTrue(zip(rescans, rescans.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        for pattern in ["(a|a)*$", "(a|aa)+$", "(a*)*b", "(\\s*)*x", "(.*a){12}$"] {
            let text = String(repeating: "a", count: 5_000) + "!"
            let t = clock.measure { XCTAssertEqual(try? ranges(pattern, text), []) }
            XCTAssertLessThan(t, .seconds(5), pattern)
        }
    }

    func testMatchesTheHandWrittenScanners() throws {
        let alphabet: [Unicode.Scalar] = [
            "a", "b", "Z", "s", "S", "t", "'", "1", "2", "9", " ", " ", "\n", "\r", "\t", "\u{0B}", "\u{85}",
            "\u{A0}", "\u{3000}", ".", "!", "-", "_", "日", "本", "é", "\u{301}", "😀", "٣", "Ⅻ", "ß"
        ]
        var rng = SplitMix(state: 18)
        for (pattern, known) in [
            (KnownPattern.gpt2Source, KnownPattern.gpt2), (KnownPattern.llama3Source, .llama3),
            (KnownPattern.qwen2Source, .qwen2)
        ] {
            let splitter = try RegexSplitter(source: pattern)
            for k in 0..<400 {
                // The last text is long: real patterns stay well inside the step budget.
                let count = k == 399 ? 20_000 : Int.random(in: 0...30, using: &rng)
                let text = (0..<count).map { _ in alphabet.randomElement(using: &rng)! }
                let expected = known.matches(text, text.map(ScalarClass.of))
                XCTAssertEqual(splitter.matches(text), expected, "\(known) on \(text.prefix(40).map { String($0) })")
            }
        }
    }

    func testRegexFeatures() throws {
        XCTAssertEqual(try strings("\\p{N}{1,3}", "12345 6"), ["123", "45", "6"])
        XCTAssertEqual(try strings("a+?", "aaa"), ["a", "a", "a"])
        XCTAssertEqual(try strings("(?i:ab)+", "abABaB x"), ["abABaB"])
        XCTAssertEqual(try strings("^\\w+", "one two\nthree"), ["one", "three"])
        XCTAssertEqual(try strings("\\w+$", "one two\nthree"), ["two", "three"])
        XCTAssertEqual(try strings("[^\\s\\p{L}]+|\\p{Han}+", "ab, 日本語!"), [",", "日本語", "!"])
        XCTAssertEqual(try strings("\\s+(?!\\S)|\\s+", "a   b"), ["  ", " "])
        XCTAssertEqual(try strings("x{2}|y{2,}|[z-]{,2}", "xxx yyy z-z"), ["xx", "yyy", "z-", "z"])
        XCTAssertEqual(try strings("\\bcat\\b", "cat concat cat."), ["cat", "cat"])
        XCTAssertEqual(try strings("\\x41\\u00e9", "Aé"), ["Aé"])
    }

    func testUnsupportedPatternsAreTypedErrors() {
        for pattern in ["(a)\\1", "(?<=a)b", "(?<!a)b", "a(?=b+)", "((", "a{5000}", "[z-a]", "\\p{Klingon}", "*a"] {
            XCTAssertThrowsError(try RegexSplitter(source: pattern), pattern) {
                guard case .unsupported = $0 as? TokenizerError else { return XCTFail("\(pattern): \($0)") }
            }
        }
    }
}

/// A seeded generator, so a failing text can be reproduced.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
