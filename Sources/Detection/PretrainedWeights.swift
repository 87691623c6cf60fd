import Foundation
import Torch
import TorchCheckpoint
import TorchNN

/// Loading weights into a model being trained, as mmcv's `load_checkpoint(strict=False)` does for
/// `init_cfg=dict(type='Pretrained', …)` (the backbone) and for `load_from` (the whole detector).
public enum PretrainedWeights {
    /// The file torchvision's model zoo caches for each `torchvision://NAME` (the current ImageNet weights first,
    /// then the file older torchvision versions downloaded).
    public static let torchvisionFiles: [String: [String]] = [
        "resnet18": ["resnet18-f37072fd.pth", "resnet18-5c106cde.pth"],
        "resnet34": ["resnet34-b627a593.pth", "resnet34-333f7ec4.pth"],
        "resnet50": ["resnet50-0676ba61.pth", "resnet50-19c8e357.pth"],
        "resnet101": ["resnet101-63fe2227.pth", "resnet101-5d3b4d8f.pth"],
        "resnet152": ["resnet152-394f9c45.pth", "resnet152-b121ed2d.pth"],
    ]

    /// torch.hub's cache: `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else `~/.cache/torch`.
    public static func torchHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["TORCH_HOME"], !home.isEmpty { return home }
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty { return (cache as NSString).appendingPathComponent("torch") }
        let user = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (user as NSString).appendingPathComponent(".cache/torch")
    }

    /// Where a backbone checkpoint named in the config lives.
    public struct Location: Sendable, Equatable {
        /// The file to read: the first existing candidate, else the first candidate (the one to create).
        public var path: String
        public var exists: Bool
        /// For `torchvision://NAME`: every cache file looked at, and the download address of the first.
        public var candidates: [String]
        public var url: String?
    }

    /// Resolves `torchvision://NAME` to torch.hub's checkpoint cache, anything else to a file path.
    public static func locate(_ checkpoint: String,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Location {
        let fm = FileManager.default
        let scheme = "torchvision://"
        guard checkpoint.hasPrefix(scheme) else {
            if let r = checkpoint.range(of: "://") {
                throw PretrainedWeightsError("init_cfg checkpoint '\(checkpoint)': the scheme '\(checkpoint[..<r.lowerBound])://' "
                                             + "is not supported here (torchvision://NAME or a file path); download the file "
                                             + "and give its path")
            }
            let path = (checkpoint as NSString).expandingTildeInPath
            return Location(path: path, exists: fm.fileExists(atPath: path), candidates: [path], url: nil)
        }
        let name = String(checkpoint.dropFirst(scheme.count))
        guard let files = torchvisionFiles[name] else {
            throw PretrainedWeightsError("init_cfg checkpoint '\(checkpoint)': unknown torchvision model '\(name)' (known: "
                                         + torchvisionFiles.keys.sorted().joined(separator: ", ") + ")")
        }
        let dir = (torchHome(environment: environment) as NSString).appendingPathComponent("hub/checkpoints")
        let candidates = files.map { (dir as NSString).appendingPathComponent($0) }
        let found = candidates.first { fm.fileExists(atPath: $0) }
        return Location(path: found ?? candidates[0], exists: found != nil, candidates: candidates,
                        url: "https://download.pytorch.org/models/\(files[0])")
    }

    /// The message for a backbone file that is not there: what was looked at, what to put there, how to do without.
    public static func missingMessage(_ checkpoint: String, _ location: Location) -> String {
        var lines = ["model.backbone.init_cfg asks for pretrained weights '\(checkpoint)', but no file is at "
                     + location.candidates.joined(separator: " or ")]
        if let url = location.url {
            lines.append("  put torchvision's file there: \(url) → \(location.candidates[0]) (TORCH_HOME sets the cache folder)")
        }
        lines.append("  or start from a whole detector checkpoint with --load-from FILE (then the backbone file is not needed),")
        lines.append("  or train the backbone from a random init: --set model.backbone.init_cfg=null")
        return lines.joined(separator: "\n")
    }

    /// mmcv's `_load_checkpoint` + `revise_keys=[('^module\\.', '')]`: the `state_dict` entry (or the top level when
    /// it is one), with the `module.` prefix of DataParallel checkpoints removed.
    public static func stateDict(of checkpoint: Checkpoint) throws -> [String: Tensor] {
        let tensors = try checkpoint.stateDict().tensors
        var out: [String: Tensor] = [:]
        for (k, v) in tensors { out[k.hasPrefix("module.") ? String(k.dropFirst("module.".count)) : k] = v }
        return out
    }

    /// Reads `path` and loads it into `module` non-strictly: matching keys copied, the rest reported.
    @discardableResult
    public static func load(_ path: String, into module: Module) throws -> LoadReport {
        let ckpt = try Checkpoint.load(path)
        return try module.load(try stateDict(of: ckpt), strict: false, source: path)
    }
}

public struct PretrainedWeightsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
