// swift-tools-version: 6.0
import PackageDescription

/// TESSERA_CORE_ONLY=1 (see the end): the array framework's targets alone.
let coreOnly = Context.environment["TESSERA_CORE_ONLY"] != nil

let package = Package(
    name: "Tessera",
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
        .library(name: "TesseraNN", targets: ["TesseraNN"]),
        .library(name: "TesseraOptimizers", targets: ["TesseraOptimizers"]),
        .library(name: "TesseraLM", targets: ["TesseraLM"]),
        .library(name: "TesseraHub", targets: ["TesseraHub"]),
        .executable(name: "tessera", targets: ["tessera"]),
        .executable(name: "train-digits", targets: ["TrainDigits"]),
    ],
    dependencies: [
        // The CLI's parsing, help, completion scripts and "did you mean" (resolves from the local copy).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `tessera serve`: HTTP on Hummingbird 2 (SwiftNIO underneath), logs through swift-log.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        // Already under Hummingbird; named for the types the server uses directly.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        // `tessera lora -c config.yaml` (mlx-lm's lora_config.yaml; resolves from the local copy).
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // TesseraHub: HTTP to the Hugging Face Hub, and SHA-256 to check what it sends.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        // ByteBuffer and HTTP types for TesseraHub, and the tests' fake hub (a loopback HTTP server).
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        // The core's edges: JSON objects and template dicts keep key order (OrderedDictionary),
        // the kernel caches' keys are SHA-256 (they name code that gets loaded and run),
        // diagnostics (backend fallbacks, compile failures) go through swift-log.
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        .target(
            name: "CTesseraKernels",
            path: "Sources/CTesseraKernels",
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]
        ),
        .target(
            name: "Tessera",
            dependencies: [
                "CTesseraKernels",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Tessera",
            // CUDA sources are embedded by Tools/embed_kernels.py, not compiled by SwiftPM.
            exclude: ["Backends/CUDA/Kernels"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "TesseraNN",
            dependencies: ["Tessera"],
            path: "Sources/TesseraNN",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "TesseraOptimizers",
            dependencies: ["Tessera", "TesseraNN"],
            path: "Sources/TesseraOptimizers",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The CLI: the commands live in TesseraCLI (so tests can parse them); `tessera` only runs them.
        .target(
            name: "TesseraCLI",
            dependencies: [
                "Tessera", "TesseraNN", "TesseraOptimizers", "TesseraLM", "TesseraServer", "TesseraHub", "TesseraSelfTest",
                "TesseraLMSelfTest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/TesseraCLI",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: ["TesseraCLI"],
            path: "Sources/tessera",
            exclude: ["hot-code.order"],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Release builds on Linux place the code that generation runs side by
            // side (gold's section ordering; the list is Tools/gen_code_order.py's):
            // the resident code of a `generate` is then the 64 KiB windows that
            // hold it, not windows scattered over the whole text segment.
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xclang-linker", "-no-pie", "-Xlinker", "--no-warn-symbol-ordering", "-Xlinker",
                        "--symbol-ordering-file=\(Context.packageDirectory)/Sources/tessera/hot-code.order",
                    ], .when(platforms: [.linux], configuration: .release))
            ]
        ),
        .testTarget(
            name: "TesseraCLITests",
            dependencies: [
                "TesseraCLI", "TesseraLM", "TesseraLMSelfTest", "Tessera", "TesseraNN", "TesseraOptimizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/TesseraCLITests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "TesseraLM",
            dependencies: [
                "Tessera", "TesseraNN", "TesseraOptimizers",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            path: "Sources/TesseraLM",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Checks and measurements kept out of the library: the GPU selftest
        // table and bench (`tessera selftest`). The CLI and TesseraTests link it.
        .target(
            name: "TesseraSelfTest",
            dependencies: ["Tessera"],
            path: "Sources/TesseraSelfTest",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The LM stack's part of the same: SyntheticModel (random weights in a real
        // model's shapes, for `selftest --bench` and the LM/CLI tests). Apart from
        // TesseraSelfTest so that TESSERA_CORE_ONLY (which keeps TesseraSelfTest for
        // TesseraTests) stays without the LLM stack.
        .target(
            name: "TesseraLMSelfTest",
            dependencies: ["Tessera", "TesseraLM"],
            path: "Sources/TesseraLMSelfTest",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The OpenAI- and Anthropic-compatible HTTP server over a GenerationEngine.
        .target(
            name: "TesseraServer",
            dependencies: [
                "TesseraLM",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/TesseraServer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraServerTests",
            dependencies: ["TesseraServer", "TesseraLM"],
            path: "Tests/TesseraServerTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Models from the Hugging Face Hub into its shared cache; the only target with networking.
        .target(
            name: "TesseraHub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/TesseraHub",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraHubTests",
            dependencies: [
                "TesseraHub", "TesseraLM",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TesseraHubTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraLMTests",
            dependencies: ["TesseraLM", "TesseraLMSelfTest", "TesseraNN"],
            path: "Tests/TesseraLMTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Examples: small programs over the libraries.
        .executableTarget(
            name: "TrainDigits",
            dependencies: ["Tessera", "TesseraNN", "TesseraOptimizers"],
            path: "Examples/TrainDigits",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // One rank of the multi-process distributed tests (started by TesseraNNTests/DistributedTests).
        .executableTarget(
            name: "tessera-dist-worker",
            dependencies: ["Tessera", "TesseraNN", "TesseraOptimizers", "TesseraTestSupport"],
            path: "Tests/DistributedWorker",
            exclude: ["netns-ring.sh"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraTests",
            dependencies: [
                "Tessera", "CTesseraKernels", "TesseraSelfTest", "TesseraTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TesseraTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The fixture layer every test suite shares: loading, the per-dtype tolerance
        // table, comparison (no XCTest in it).
        .target(
            name: "TesseraTestSupport",
            dependencies: ["Tessera"],
            path: "Tests/TesseraTestSupport",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraNNTests",
            dependencies: ["Tessera", "TesseraNN", "TesseraTestSupport"],
            path: "Tests/TesseraNNTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraOptimizersTests",
            dependencies: ["Tessera", "TesseraNN", "TesseraOptimizers", "TesseraTestSupport"],
            path: "Tests/TesseraOptimizersTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)

// TESSERA_CORE_ONLY=1: the array framework's targets and their tests alone,
// without the LLM stack, CLI, server and hub or the packages they pull in
// (SwiftNIO, Hummingbird, ...). CI's thread-sanitizer run builds this way
// (with `--manifest-cache none`, as the manifest then depends on the environment).
if coreOnly {
    let core: Set<String> = [
        "CTesseraKernels", "Tessera", "TesseraSelfTest", "TesseraNN", "TesseraOptimizers", "TesseraTestSupport",
        "TesseraTests", "TesseraNNTests", "TesseraOptimizersTests",
    ]
    package.targets.removeAll { !core.contains($0.name) }
    package.products.removeAll { !core.contains($0.name) }
    // The core's own packages stay (small: no SwiftNIO); the rest go.
    let coreURLs = ["swift-collections", "swift-crypto", "swift-log"]
    package.dependencies.removeAll { dependency in
        guard case .sourceControl(_, let location, _) = dependency.kind else { return true }
        return !coreURLs.contains { location.contains("/" + $0) }
    }
}

// Release builds of this package itself (not as another package's dependency,
// where SwiftPM refuses unsafe flags) on Linux emit each Swift function in a
// section of its own, so that the linker can place the code that generation
// runs side by side (the `tessera` target's section ordering above;
// docs/PERFORMANCE.md, "Peak RSS"). Code is otherwise unchanged.
let builtAsDependency = Context.packageDirectory.contains("/checkouts/")
if builtAsDependency {
    for target in package.targets where target.name == "tessera" { target.linkerSettings = nil }
} else {
    for target in package.targets where target.type != .test && target.name != "CTesseraKernels" {
        target.swiftSettings =
            (target.swiftSettings ?? [])
            + [.unsafeFlags(["-Xfrontend", "-function-sections"], .when(platforms: [.linux], configuration: .release))]
    }
}
