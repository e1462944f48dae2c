// Parsing and parse-time validation of the commands' options: every range
// error names its option, before any model loads.

import ArgumentParser
import XCTest

@testable import TesseraCLI

final class OptionTests: XCTestCase {
    /// The message a parse of `arguments` fails with (nil: it parsed).
    func failure<C: ParsableCommand>(_ command: C.Type, _ arguments: [String]) -> String? {
        do {
            _ = try command.parse(arguments)
            return nil
        } catch {
            return command.message(for: error)
        }
    }

    func assertRejected(
        _ arguments: [String], naming option: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let message = failure(GenerateCommand.self, ["-p", "hi"] + arguments) else {
            return XCTFail("\(arguments) parsed", file: file, line: line)
        }
        XCTAssertTrue(message.contains(option), "\(arguments): \(message)", file: file, line: line)
    }

    func testOutOfRangeSamplingOptionsAreRejectedByName() {
        assertRejected(["--max-tokens", "0"], naming: "--max-tokens")
        assertRejected(["--max-tokens", "-5"], naming: "--max-tokens")
        assertRejected(["--temp", "-1"], naming: "--temp")
        assertRejected(["--temp", "nan"], naming: "--temp")
        assertRejected(["--top-p", "2"], naming: "--top-p")
        assertRejected(["--top-p", "0"], naming: "--top-p")
        assertRejected(["--top-k", "-1"], naming: "--top-k")
        assertRejected(["--min-p", "1.5"], naming: "--min-p")
        assertRejected(["--min-p", "-0.1"], naming: "--min-p")
        assertRejected(["--repetition-penalty", "0"], naming: "--repetition-penalty")
        assertRejected(["--max-kv-size", "0"], naming: "--max-kv-size")
        assertRejected(["--kv-bits", "7"], naming: "--kv-bits")
        assertRejected(["--kv-bits", "4", "--kv-group-size", "48"], naming: "--kv-group-size")
        assertRejected(["--quantized-kv-start", "-1"], naming: "--quantized-kv-start")
        assertRejected(["--precision", "low"], naming: "--precision")
        assertRejected(["--kv-cache-type", "q8_0"], naming: "--kv-cache-type")
        assertRejected(["--max-tokens", "many"], naming: "--max-tokens")
    }

    func testTheRangeMessageSaysTheRange() {
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "--top-p", "2"]), "--top-p must be in (0, 1], got 2.0")
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "--kv-bits", "7"]),
            "--kv-bits must be one of 2, 3, 4, 5, 6, 8, got 7")
    }

    func testEdgesOfTheRangesParse() throws {
        let edges: [[String]] =
            [
                ["--max-tokens", "1"], ["--temp", "0"], ["--top-p", "1"], ["--top-k", "0"], ["--min-p", "0"],
                ["--min-p", "1"], ["--repetition-penalty", "0.5"], ["--max-kv-size", "1"]
            ] + [2, 3, 4, 5, 6, 8].map { ["--kv-bits", "\($0)"] }
        for arguments in edges { XCTAssertNil(failure(GenerateCommand.self, ["-p", "hi"] + arguments), "\(arguments)") }
    }

    /// `--kv-cache-type f16|f32` on generate and chat: float16 unless asked, listed in --help.
    func testTheCacheTypeDefaultsToFloat16() throws {
        XCTAssertEqual(try GenerateCommand.parse(["-p", "hi"]).sampling.kvCacheType, .f16)
        XCTAssertEqual(
            try GenerateCommand.parse(["-p", "hi", "--kv-cache-type", "f32"]).sampling.parameters(
                defaults: SamplingDefaults()
            ).kvCacheType, .f32)
        XCTAssertEqual(try ChatCommand.parse(["--kv-cache-type", "f32"]).sampling.kvCacheType, .f32)
        XCTAssertEqual(
            try GenerateCommand.parse(["-p", "hi"]).sampling.parameters(defaults: SamplingDefaults()).kvCacheType,
            .f16)
        for command in [GenerateCommand.helpMessage(), ChatCommand.helpMessage()] {
            XCTAssertTrue(command.contains("--kv-cache-type"), command)
            XCTAssertTrue(command.contains("f16"), command)
        }
    }

    func testShortFlagsAndNames() throws {
        let command = try GenerateCommand.parse(["-m", "/", "-p", "a haiku", "-n", "12", "--temperature", "0.5", "-v"])
        XCTAssertEqual(command.modelOptions.model, "/")
        XCTAssertEqual(command.prompt, "a haiku")
        XCTAssertEqual(command.sampling.maxTokens, 12)
        XCTAssertEqual(command.sampling.temp, 0.5)
        XCTAssertTrue(command.modelOptions.verbose)
    }

    func testTyposGetASuggestion() {
        let message = failure(GenerateCommand.self, ["-p", "hi", "--tmp", "1"]) ?? ""
        XCTAssertTrue(message.contains("Did you mean '--temp'?"), message)
    }

    func testAMissingModelIsNamedBeforeLoading() {
        let message = failure(GenerateCommand.self, ["-p", "hi", "-m", "/no/such/model.gguf"]) ?? ""
        XCTAssertEqual(
            message,
            "--model: no model file or folder at /no/such/model.gguf (nor a Hugging Face repo id ORG/NAME[@REVISION])")
        XCTAssertNotNil(failure(ChatCommand.self, ["--model", "/no/such/folder"]))
        XCTAssertNotNil(failure(TokenizeCommand.self, ["--model", "/no/such/folder", "--text", "a"]))
    }

    func testAHubRepoIdIsAcceptedAndParsedBeforeLoading() throws {
        let options = try GenerateCommand.parse(["-p", "hi", "-m", "HuggingFaceTB/SmolLM2-135M-Instruct@v1.0"])
            .modelOptions
        let ref = try XCTUnwrap(options.hubReference())
        XCTAssertEqual(ref.repo, "HuggingFaceTB/SmolLM2-135M-Instruct")
        XCTAssertEqual(ref.revision, "v1.0")
        let gguf = try GenerateCommand.parse(["-p", "hi", "-m", "org/name-GGUF:Q4_K_M"]).modelOptions
        XCTAssertEqual(gguf.hubReference()?.quantization, "Q4_K_M")
        XCTAssertNil(try GenerateCommand.parse(["-p", "hi", "-m", "/"]).modelOptions.hubReference())
        // Not a repo id (three parts, a double dash): still "no model".
        XCTAssertNotNil(failure(GenerateCommand.self, ["-p", "hi", "-m", "a/b/c"]))
        XCTAssertNotNil(failure(GenerateCommand.self, ["-p", "hi", "-m", "org/na--me"]))
        let local = failure(GenerateCommand.self, ["-p", "hi", "-m", "/", "--gguf-file", "Q4_K_M"]) ?? ""
        XCTAssertTrue(local.contains("--gguf-file applies to a Hugging Face repo"), local)
        XCTAssertNil(failure(GenerateCommand.self, ["-p", "hi", "-m", "org/name-GGUF", "--gguf-file", "Q4_K_M"]))
    }

    func testTheModelComesFromTheEnvironmentWhenNotGiven() throws {
        let none = try GenerateCommand.parse(["-p", "hi"]).modelOptions
        XCTAssertEqual(none.requestedModel(environment: ["TESSERA_MODEL": "/models/x.gguf"]), "/models/x.gguf")
        XCTAssertNil(none.requestedModel(environment: ["TESSERA_MODEL": ""]))
        XCTAssertNil(none.requestedModel(environment: [:]))
        let given = try GenerateCommand.parse(["-p", "hi", "-m", "/"]).modelOptions
        XCTAssertEqual(given.requestedModel(environment: ["TESSERA_MODEL": "/models/x.gguf"]), "/")
    }

    func testTokenizeNeedsTextOrIds() {
        XCTAssertEqual(failure(TokenizeCommand.self, []), "tokenize needs --text TEXT or --ids \"1 2 3\"")
        XCTAssertNotNil(failure(TokenizeCommand.self, ["--text", "a", "--ids", "1"]))
        XCTAssertTrue((failure(TokenizeCommand.self, ["--ids", "1 x"]) ?? "").contains("--ids"))
        XCTAssertNil(failure(TokenizeCommand.self, ["--ids", "1, 2,3"]))
    }

    func testConvertChecksItsOptions() {
        XCTAssertTrue((failure(ConvertCommand.self, ["-m", "/no/such.gguf", "-o", "/tmp/x"]) ?? "").contains("--model"))
        XCTAssertTrue((failure(ConvertCommand.self, ["-m", "/", "-o", "/"]) ?? "").contains("--output"))
        let fresh = "/tmp/tessera-cli-test-\(UInt64.random(in: 0...UInt64.max))"
        XCTAssertTrue((failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--bits", "7"]) ?? "").contains("--bits"))
        XCTAssertTrue(
            (failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--group-size", "16"]) ?? "").contains(
                "--group-size"))
        XCTAssertNil(failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--bits", "8"]))
        // An existing output needs --force; the new widths and recipes are checked by name.
        XCTAssertTrue((failure(ConvertCommand.self, ["-m", "/", "-o", "/"]) ?? "").contains("--force"))
        XCTAssertNil(failure(ConvertCommand.self, ["-m", "/", "-o", "/", "--force"]))
        XCTAssertTrue(
            (failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--embedding-bits", "7"]) ?? "").contains(
                "--embedding-bits"))
        XCTAssertTrue(
            (failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--quant-predicate", "mixed_9_9"]) ?? "").contains(
                "mixed_3_6"))
        XCTAssertTrue(
            (failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--quant-predicate", "mixed_3_6", "--bits", "4"])
                ?? "")
                .contains("--quant-predicate"))
        XCTAssertNil(
            failure(
                ConvertCommand.self, ["-m", "/", "-o", fresh, "--quant-predicate", "mixed_4_6", "--embedding-bits", "8"]
            ))
    }

    func testEverySubcommandIsThere() throws {
        let names = TesseraCommand.configuration.subcommands.compactMap { $0.configuration.commandName }
        for name in ["generate", "chat", "tokenize", "convert", "devices", "selftest", "demo"] {
            XCTAssertTrue(names.contains(name), name)
        }
        XCTAssertTrue(try TesseraCommand.parseAsRoot(["selftest", "--bench", "--quick"]) is SelfTestCommand)
        XCTAssertNotNil(failure(SelfTestCommand.self, ["--quick"]))
    }

    /// A negative number is the option's value, refused by its range (not "missing value").
    func testNegativeNumbersAreValuesOutOfRange() {
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "--max-tokens", "-5"]), "--max-tokens must be at least 1, got -5"
        )
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "-n", "-5"]), "--max-tokens must be at least 1, got -5")
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "--temp", "-1"]),
            "--temp must be a number ≥ 0 (0 is greedy), got -1.0")
        XCTAssertEqual(
            failure(GenerateCommand.self, ["-p", "hi", "--top-k", "-1"]),
            "--top-k must be ≥ 0 (0 keeps every token), got -1")
        XCTAssertEqual(failure(ChatCommand.self, ["--max-kv-size", "-2"]), "--max-kv-size must be at least 1, got -2")
        XCTAssertEqual(failure(ChatCommand.self, ["--min-p", "-0.5"]), "--min-p must be in [0, 1], got -0.5")
    }

    /// `tessera NAME --help` is a help request for every subcommand (ArgumentParser's
    /// help command, or a clean exit), never the command itself run with "--help":
    /// `launch`, whose trailing command takes any argument, ran `/usr/bin/env --help`.
    func testEverySubcommandHasItsHelp() {
        for command in TesseraCommand.configuration.subcommands {
            guard let name = command.configuration.commandName else { continue }
            do {
                let parsed = try TesseraCommand.parseAsRoot([name, "--help"])
                XCTAssertNotEqual(
                    ObjectIdentifier(type(of: parsed)), ObjectIdentifier(command),
                    "`\(name) --help` parsed as the command")
            } catch {
                XCTAssertEqual(TesseraCommand.exitCode(for: error), .success, "\(name): \(error)")
            }
        }
    }

    func testAMistypedCommandGetsASuggestion() {
        XCTAssertEqual(
            TesseraCommand.subcommandSuggestion(["genrate", "-p", "hi"]),
            "Unknown command 'genrate'. Did you mean 'generate'?")
        XCTAssertEqual(TesseraCommand.subcommandSuggestion(["chta"]), "Unknown command 'chta'. Did you mean 'chat'?")
        XCTAssertEqual(
            TesseraCommand.subcommandSuggestion(["model"]), "Unknown command 'model'. Did you mean 'models'?")
        for fine in [["generate"], ["models", "rm"], ["help"], ["--version"], [], ["xyzzy"]] {
            XCTAssertNil(TesseraCommand.subcommandSuggestion(fine), "\(fine)")
        }
        XCTAssertEqual(TesseraCommand.editDistance("convrt", "convert"), 1)
        XCTAssertEqual(TesseraCommand.editDistance("", "abc"), 3)
        XCTAssertEqual(TesseraCommand.editDistance("kitten", "sitting"), 3)
    }

    /// `--generate-completion-script` for each shell names the subcommands and their options.
    func testCompletionScriptsNameTheCommands() {
        for shell in [CompletionShell.bash, .zsh, .fish] {
            let script = TesseraCommand.completionScript(for: shell)
            for word in ["generate", "chat", "convert", "models", "max-tokens", "quant-predicate"] {
                XCTAssertTrue(script.contains(word), "\(shell) script lacks \(word)")
            }
        }
    }

    /// mlx_lm.convert's spellings: -q, --q-bits, --q-group-size; --dtype for an unquantized folder.
    func testConvertTakesMLXLMsFlags() throws {
        let fresh = "/tmp/tessera-cli-test-\(UInt64.random(in: 0...UInt64.max))"
        let command = try ConvertCommand.parse(["-m", "/", "-o", fresh, "-q", "--q-bits", "8", "--q-group-size", "32"])
        XCTAssertEqual(command.bits, 8)
        XCTAssertEqual(command.groupSize, 32)
        XCTAssertTrue(command.quantize)
        XCTAssertEqual(try ConvertCommand.parse(["-m", "/", "-o", fresh, "--dtype", "bfloat16"]).dtype, "bfloat16")
        XCTAssertEqual(
            failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--dtype", "float8"]),
            "--dtype must be float32, float16 or bfloat16, got float8")
        for quantizing in [["-q"], ["--bits", "4"], ["--q-group-size", "64"], ["--quant-predicate", "mixed_3_6"]] {
            XCTAssertTrue(
                (failure(ConvertCommand.self, ["-m", "/", "-o", fresh, "--dtype", "float16"] + quantizing) ?? "")
                    .contains("--dtype"),
                "\(quantizing)")
        }
    }
}
