// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Tessera",
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
        .library(name: "TesseraLM", targets: ["TesseraLM"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    targets: [
        .target(
            name: "Tessera",
            path: "Sources/Tessera",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "TesseraLM",
            dependencies: ["Tessera"],
            path: "Sources/TesseraLM",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: ["Tessera", "TesseraLM"],
            path: "Sources/tessera",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraTests",
            dependencies: ["Tessera"],
            path: "Tests/TesseraTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraLMTests",
            dependencies: ["TesseraLM"],
            path: "Tests/TesseraLMTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
