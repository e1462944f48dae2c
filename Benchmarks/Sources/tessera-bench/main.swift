// tessera-bench: Tessera benchmarks, one suite per argument.
//
//   swift run -c release --package-path Benchmarks tessera-bench [suite...]
//   suites: compile (default: all)

let suites: [String: () -> Void] = ["compile": runCompileSuite]
let requested = CommandLine.arguments.dropFirst()
for name in requested.isEmpty ? Array(suites.keys.sorted()) : Array(requested) {
    guard let run = suites[name] else {
        print("unknown suite '\(name)'; suites: \(suites.keys.sorted().joined(separator: " "))")
        continue
    }
    run()
}
