// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Tessera",
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    targets: [
        .target(
            name: "CTesseraKernels",
            path: "Sources/CTesseraKernels",
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]
        ),
        .target(
            name: "Tessera",
            dependencies: ["CTesseraKernels"],
            path: "Sources/Tessera",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: ["Tessera"],
            path: "Sources/tessera",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "TesseraTests",
            dependencies: ["Tessera", "CTesseraKernels"],
            path: "Tests/TesseraTests",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
