// swift-tools-version: 6.0
// Coverage-guided fuzzing of Tessera's input parsers with libFuzzer
// (`swift build -c release --sanitize fuzzer --sanitize address`): one
// binary, the target picked by TESSERA_FUZZ_TARGET. Run by Tools/fuzz.sh.
import PackageDescription

let package = Package(
    name: "TesseraFuzz",
    dependencies: [.package(name: "Tessera", path: "..")],
    targets: [
        .executableTarget(
            name: "tessera-fuzz",
            dependencies: [
                .product(name: "Tessera", package: "Tessera"), .product(name: "TesseraLM", package: "Tessera"),
            ],
            path: "Sources/tessera-fuzz",
            // libFuzzer provides main(); this target only defines LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-parse-as-library"]), .swiftLanguageMode(.v6)]
        )
    ]
)
