// `tessera models`: the cached models (Tessera's cache and the Hugging Face
// hub cache) with sizes and formats; `tessera models rm NAME` removes one.

import ArgumentParser

import Foundation

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the cached models, or remove one.",
        subcommands: [ListModels.self, RemoveModel.self], defaultSubcommand: ListModels.self)

    init() {}
}

struct ListModels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the models in Tessera's cache and the Hugging Face hub cache.")

    init() {}

    func run() {
        let (tessera, hub) = ModelCache.folders()
        let models = ModelCache.list(tessera: tessera, hub: hub)
        if models.isEmpty {
            print("no cached models (searched \(tessera) and \(hub))")
            return
        }
        let width = max(4, models.map(\.name.count).max() ?? 0)
        print("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  SIZE       SOURCE   FORMAT")
        for m in models {
            let size = ModelCache.describe(bytes: m.bytes)
            print(
                m.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + size.padding(toLength: 9, withPad: " ", startingAt: 0) + "  "
                    + m.source.padding(toLength: 7, withPad: " ", startingAt: 0) + "  " + m.format)
        }
        let total = models.reduce(Int64(0)) { $0 + $1.bytes }
        print("\(models.count) models, \(ModelCache.describe(bytes: total))")
    }
}

struct RemoveModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a cached model by the name `tessera models` lists.")

    @Argument(help: "The model's name as listed (a file or folder name, or ORG/NAME for the hub cache).")
    var name: String

    @Flag(name: [.short, .long], help: "Remove without asking.")
    var yes = false

    init() {}

    func run() throws {
        let (tessera, hub) = ModelCache.folders()
        // Only an exact listed name: never a path the user typed.
        let matches = ModelCache.list(tessera: tessera, hub: hub).filter { $0.name == name }
        guard !matches.isEmpty else {
            throw NoSuchModel(name: name)
        }
        for model in matches {
            if !yes {
                print("remove \(model.path) (\(ModelCache.describe(bytes: model.bytes)))? [y/N] ", terminator: "")
                guard let answer = readLine(), answer.lowercased() == "y" || answer.lowercased() == "yes" else {
                    print("kept")
                    continue
                }
            }
            try FileManager.default.removeItem(atPath: model.path)
            print("removed \(model.path)")
        }
    }
}

/// `tessera models rm` of a name that is not listed (a runtime error: exit 1, no usage text).
struct NoSuchModel: Error, CustomStringConvertible {
    let name: String
    var description: String { "no cached model named \(name) (see `tessera models`)" }
}
