// swift-tools-version: 6.0
// Benchmarks for Tessera, with peer figures (numpy, torch, llama.cpp) from the same run:
//   swift run -c release --package-path Benchmarks tessera-bench [suite...]
import PackageDescription

let package = Package(
    name: "TesseraBenchmarks",
    dependencies: [.package(name: "Tessera", path: "..")],
    targets: [
        .executableTarget(
            name: "tessera-bench",
            dependencies: [
                .product(name: "Tessera", package: "Tessera"), .product(name: "TesseraLM", package: "Tessera"),
                .product(name: "TesseraNN", package: "Tessera"), .product(name: "TesseraOptimizers", package: "Tessera")
            ],
            path: "Sources/tessera-bench"
        )
    ]
)
