import ArgumentParser
import Imaging
import Torch
import TorchNN

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the libtorch and OpenCV versions, threads, CUDA devices and distributed backends.")

    @Option(name: .long, help: "Intra-op threads to set before printing (default: libtorch's choice).")
    var threads: Int?

    @Flag(name: .long, help: "Also run a tiny forward pass (conv → BN → ReLU → max-pool) as a smoke test.")
    var forward = false

    func run() throws {
        if let threads { try Torch.setThreads(threads) }
        print("libtorch:      \(Torch.version)")
        print("threads:       \(Torch.threads)")
        print("CUDA:          \(Torch.cudaAvailable ? "available" : "not available"), \(Torch.cudaDeviceCount) device(s)")
        print("OpenCV:        \(Image.openCVVersion)")
        print("distributed:   \(distributedLine())")
        if forward { try smokeForward() }
    }

    /// Whether data-parallel collectives are compiled in (Gloo for CPU, NCCL for CUDA tensors), or why not.
    func distributedLine() -> String {
        let a = ProcessGroup.availability
        guard a.gloo else { return "not available: \(a.reason)" }
        return a.nccl ? "available (Gloo for CPU tensors, NCCL for CUDA tensors)"
            : "available (Gloo for CPU tensors; \(a.reason))"
    }

    /// A seeded conv → BN → ReLU → max-pool forward on a random image: shape and checksum.
    func smokeForward() throws {
        try Torch.manualSeed(0)
        let net = Sequential([try Conv2d(3, 8, kernelSize: 3, padding: 1), try BatchNorm2d(8)])
        net.eval()
        let x = try Tensor.randn([1, 3, 32, 32])
        let y = try Functional.maxPool2d(try net(x).relu(), kernel: 3, stride: 2, padding: 1)
        print("forward:       input \(x.shape) → output \(y.shape), sum \(try y.sum().item())")
    }
}
