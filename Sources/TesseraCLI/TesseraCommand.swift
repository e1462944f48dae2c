// The `tessera` command: its subcommands, version and environment. Each
// subcommand parses and validates its options, then calls the libraries.

import ArgumentParser

/// The root command; `tessera <subcommand> --help` describes each one.
public struct TesseraCommand: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera: machine-learning arrays in Swift, and LLM text generation on top.",
        discussion: EnvironmentVariables.help,
        version: "tessera \(version)",
        subcommands: [
            GenerateCommand.self, ChatCommand.self, ServeCommand.self, LoRACommand.self, FuseCommand.self,
            TokenizeCommand.self, ConvertCommand.self, ModelsCommand.self, LaunchCommand.self, DevicesCommand.self,
            SelfTestCommand.self, DemoCommand.self, VersionCommand.self,
        ]
    )

    public init() {}

    /// Parses the command line, runs the command it names, and exits with an
    /// error message and status when parsing or running fails.
    public static func runFromCommandLine() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// The environment variables the CLI reads, as the help lists them.
enum EnvironmentVariables {
    static let model = "TESSERA_MODEL"
    static let cache = "TESSERA_CACHE"

    static let help = """
        Environment variables:
          TESSERA_MODEL           the model when --model is not given
          TESSERA_CACHE           the default model's cache (~/.cache/tessera)
          TESSERA_DEFAULT_DEVICE  cpu or gpu: where arrays are computed
          TESSERA_NUM_THREADS     CPU threads for the kernels (default: cores)
          HF_ENDPOINT             the Hugging Face Hub for --model ORG/NAME (https://huggingface.co)
          HF_HUB_CACHE, HF_HOME   its shared cache ($HF_HOME/hub, default ~/.cache/huggingface/hub)
          HF_TOKEN                token for private or gated repos (else $HF_HOME/token)
          HF_HUB_OFFLINE          1: take hub models from the cache only
        """
}

/// `tessera version`: the same as `tessera --version` (kept from the first CLI).
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the version.", shouldDisplay: false)

    func run() {
        print("tessera \(TesseraCommand.version)")
    }
}
