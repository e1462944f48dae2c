// The README and `tessera --help` agree: every subcommand and environment
// variable the help lists is in the README, and every `tessera WORD` the
// README shows is a subcommand. And `convert`'s progress display.

import ArgumentParser
import Foundation
import TesseraLM
import XCTest

@testable import TesseraCLI

final class HelpAndReadmeTests: XCTestCase {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md").path

    /// The names under SUBCOMMANDS in `tessera --help` (parsed from the help text itself).
    func helpSubcommands() -> [String] {
        let help = TesseraCommand.helpMessage(columns: 200)
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("SUBCOMMANDS:") }) else { return [] }
        var names: [String] = []
        for line in lines[(start + 1)...] {
            guard line.hasPrefix("  ") else { break }
            let name = line.drop { $0 == " " }.prefix { $0 != " " }
            if !name.isEmpty { names.append(String(name)) }
        }
        return names
    }

    func testEverySubcommandInHelpIsInTheReadme() throws {
        let readme = try String(contentsOfFile: Self.readme, encoding: .utf8)
        let names = helpSubcommands()
        // The help lists what the configuration declares (so the parse above read the right section).
        XCTAssertEqual(
            Set(names.map { $0.replacingOccurrences(of: " (default)", with: "") }),
            Set(
                TesseraCommand.configuration.subcommands.filter { $0.configuration.shouldDisplay }.compactMap {
                    $0.configuration.commandName
                }))
        for name in names {
            XCTAssertTrue(readme.contains("tessera \(name)"), "README.md never shows `tessera \(name)`")
        }
    }

    func testEveryReadmeCommandIsASubcommand() throws {
        let readme = try String(contentsOfFile: Self.readme, encoding: .utf8)
        let names = Set(helpSubcommands())
        let pattern = try NSRegularExpression(pattern: "(?<![-/\\w])tessera ([a-z][a-z-]*)")
        let text = readme as NSString
        var shown: Set<String> = []
        for match in pattern.matches(in: readme, range: NSRange(location: 0, length: text.length)) {
            shown.insert(text.substring(with: match.range(at: 1)))
        }
        XCTAssertFalse(shown.isEmpty)
        XCTAssertEqual(shown.subtracting(names), [], "README.md shows commands `tessera --help` does not list")
    }

    func testEveryEnvironmentVariableInHelpIsInTheReadme() throws {
        let readme = try String(contentsOfFile: Self.readme, encoding: .utf8)
        let variables = EnvironmentVariables.help.split(separator: "\n").compactMap { line -> String? in
            let word: Substring = line.drop { $0 == " " }.prefix { $0 != " " }
            guard word.count > 3, word.allSatisfy({ $0.isUppercase || $0 == "_" }) else { return nil }
            return word.description
        }
        XCTAssertGreaterThan(variables.count, 5)
        for variable in variables { XCTAssertTrue(readme.contains(variable), "README.md never names \(variable)") }
    }

    func progress(_ written: Int, of count: Int, bytes: Int, total: Int) -> ModelConverter.Progress {
        .init(tensor: "t\(written)", tensorsWritten: written, tensorCount: count, bytesWritten: bytes, byteCount: total)
    }

    /// Not a terminal: a line per tenth of the bytes (and one at the end), none redrawn.
    func testConvertProgressPrintsTenLinesWhenNotATerminal() {
        var out = ""
        let display = ConvertProgress(terminal: false, write: { out += $0 })
        for i in 1...100 { display.update(progress(i, of: 100, bytes: i * 1_000_000, total: 100_000_000)) }
        display.end()
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 10, out)
        XCTAssertEqual(lines.last, "converting: 100/100 tensors, 100.0 MB / 100.0 MB")
        XCTAssertFalse(out.contains("\r"))
    }

    /// A terminal: one line redrawn in place, with a bar, and cleared at the end.
    func testConvertProgressRedrawsOneLineOnATerminal() {
        var out = ""
        let display = ConvertProgress(terminal: true, write: { out += $0 })
        display.update(progress(1, of: 4, bytes: 25, total: 100))
        display.update(progress(4, of: 4, bytes: 100, total: 100))
        display.end()
        XCTAssertFalse(out.contains("\n"))
        XCTAssertTrue(out.contains("[######..................] 25%  1/4 tensors"), out)
        XCTAssertTrue(out.contains("[########################] 100%  4/4 tensors"), out)
        XCTAssertTrue(out.hasSuffix("\r\u{1B}[2K"))
    }
}
