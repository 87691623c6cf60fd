// swift-tools-version: 6.0
// GHM (RetinaNet + GHM-C + GHM-R) on libtorch. The C shim in CShim/ is built by CMake (`make shim`)
// into .build-shim/lib before SwiftPM runs; see the Makefile.
import PackageDescription
import Foundation

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let shimLib = "\(root)/.build-shim/lib"

// Every product that links the shim finds it without LD_LIBRARY_PATH: the absolute build folder
// for in-tree use, and $ORIGIN/../lib for a relocated bundle (dist/bin/ghm + dist/lib/*.so).
let shimLinker: [LinkerSetting] = [
    .unsafeFlags(["-L\(shimLib)", "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN/../lib",
                  "-Xlinker", "-rpath", "-Xlinker", shimLib]),
]

let package = Package(
    name: "GHM",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ghm", targets: ["ghm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Layers, bottom to top; arrows point down only (README "Layout").
        .target(name: "Support"),
        .systemLibrary(name: "CGHMTorch", path: "Sources/CGHMTorch"),
        .systemLibrary(name: "CGHMVision", path: "Sources/CGHMVision"),
        .target(name: "Torch", dependencies: ["CGHMTorch"], linkerSettings: shimLinker),
        .target(name: "Imaging", dependencies: ["CGHMVision", "Support"], linkerSettings: shimLinker),
        .target(name: "TorchNN", dependencies: ["Torch"]),
        .target(name: "TorchCheckpoint", dependencies: ["Torch", "Support"]),
        .target(name: "GHMLosses", dependencies: ["Torch", "TorchNN"]),
        .target(name: "COCO", dependencies: ["Support", "Imaging"]),
        .target(name: "Detection", dependencies: [
            "Torch", "TorchNN", "TorchCheckpoint", "GHMLosses", "Imaging", "Support",
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "Inference", dependencies: ["Detection", "COCO", "Imaging", "Torch", "Support"]),
        .target(name: "Datasets", dependencies: ["COCO", "Imaging", "Support"]),
        .target(name: "Training", dependencies: [
            "Detection", "COCO", "Inference", "Imaging", "Torch", "TorchNN", "TorchCheckpoint", "GHMLosses", "Support",
            .product(name: "Yams", package: "Yams"),
        ]),
        // Tools, not libraries: parity runner, benchmarks, fuzzer, the Python reference launchers.
        .target(name: "GHMTools", dependencies: [
            "Support", "Torch", "TorchNN", "TorchCheckpoint", "GHMLosses", "Imaging", "COCO", "Detection", "Inference",
        ]),
        .executableTarget(name: "ghm", dependencies: [
            "Support", "Torch", "TorchNN", "TorchCheckpoint", "Imaging", "COCO", "GHMLosses", "Detection", "Inference",
            "Training", "GHMTools", "Datasets",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", dependencies: ["Torch", "Support"], path: "Tests/TestSupport"),
        .testTarget(name: "SupportTests", dependencies: ["Support", "TestSupport"]),
        .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
        .testTarget(name: "TorchNNTests", dependencies: ["TorchNN", "TestSupport"]),
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint", "TestSupport"]),
        .testTarget(name: "GHMLossesTests", dependencies: ["GHMLosses", "TestSupport"]),
        .testTarget(name: "COCOTests", dependencies: ["COCO", "GHMTools", "TestSupport"]),
        .testTarget(name: "DetectionTests", dependencies: ["Detection", "TorchNN", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Detection", "COCO", "TestSupport"]),
        .testTarget(name: "GHMToolsTests", dependencies: ["GHMTools", "Detection", "TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "COCO", "Imaging", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Detection", "Inference", "TorchCheckpoint", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
