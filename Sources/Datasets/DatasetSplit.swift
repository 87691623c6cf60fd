import COCO
import Foundation
import Support

/// Train/val split by source image: all tiles of one source (same `source_file`, else same `file_name`) go to the
/// same half. Images and annotations keep their ids; both halves keep all categories.
public enum DatasetSplit {
    /// The sources named in `val` go to val. A name matches a source exactly, or its last path component, or that
    /// without extension; a name that matches nothing is an error.
    public static func split(_ file: DatasetFile, val names: [String]) throws -> (train: DatasetFile, val: DatasetFile) {
        let sources = Set(file.coco.images.indices.map { file.source(ofImageAt: $0) })
        var chosen = Set<String>()
        for name in names {
            let hits = sources.filter { s in
                let last = (s as NSString).lastPathComponent
                return s == name || last == name || (last as NSString).deletingPathExtension == name
            }
            if hits.isEmpty { throw DatasetError("--val \(name): no image has this source") }
            chosen.formUnion(hits)
        }
        return try split(file) { chosen.contains($0) }
    }

    /// `round(fraction × number of sources)` sources, drawn with `seed`, go to val (sources are sorted by name
    /// first, so the result depends only on the set of sources and the seed).
    public static func split(_ file: DatasetFile, valFraction fraction: Double, seed: UInt64) throws
        -> (train: DatasetFile, val: DatasetFile) {
        var sources = Array(Set(file.coco.images.indices.map { file.source(ofImageAt: $0) })).sorted()
        var rng = SplitMix64(seed)
        sources.shuffle(using: &rng)
        let count = Int((fraction * Double(sources.count)).rounded())
        let chosen = Set(sources.prefix(count))
        return try split(file) { chosen.contains($0) }
    }

    static func split(_ file: DatasetFile, isVal: (String) -> Bool) throws -> (train: DatasetFile, val: DatasetFile) {
        let indices = file.coco.images.indices
        let valIdx = indices.filter { isVal(file.source(ofImageAt: $0)) }
        let trainIdx = indices.filter { !isVal(file.source(ofImageAt: $0)) }
        return (try subset(file, trainIdx), try subset(file, valIdx))
    }

    static func subset(_ file: DatasetFile, _ indices: [Int]) throws -> DatasetFile {
        let images = indices.map { file.coco.images[$0] }
        let annotations = images.flatMap { file.coco.annotations(forImageId: $0.id) }
        return try DatasetFile(images: images, annotations: annotations, categories: file.coco.categories,
                               origins: indices.map { file.origins[$0] })
    }
}
