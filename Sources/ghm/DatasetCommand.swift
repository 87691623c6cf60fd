import ArgumentParser
import Datasets
import Foundation
import Inference
import Support

/// `ghm dataset …`: the data tools for fine-tuning on your own data.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Data tools: convert VOC/CSV to COCO JSON, tile large images, split train/val, show stats.",
        discussion: """
            Bad rows and boxes are reported on stderr as file:line: message and counted in the summary; nothing \
            is dropped silently. Every output file is written under a temporary name and renamed.
            """,
        subcommands: [DatasetConvertCommand.self, DatasetTileCommand.self, DatasetSplitCommand.self,
                      DatasetStatsCommand.self])
}

/// Prints an issue on stderr as it is found.
private func printIssue(_ issue: DatasetIssue) {
    FileHandle.standardError.write(Data((issue.description + "\n").utf8))
}

private func printSummary(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct DatasetConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert Pascal VOC XML folders and box CSV files to one COCO instances JSON.",
        discussion: """
            VOC: every .xml file of each --voc folder (sorted by name): <filename>, <size>, and each <object>'s \
            <name>, <difficult> and <bndbox>. When <filename> is not in the images folder but exactly one file \
            with its stem and an image extension is (OSBS_029.xml naming OSBS_029.tif beside OSBS_029.png), \
            that file is used and a note says so. The size comes from <size>, else from the image file.

            CSV: one row per box, image_path,xmin,ymin,xmax,ymax,label (keras-retinanet, DeepForest), with or \
            without that header line (with it, the columns may be in any order). A row whose four coordinates \
            are empty or all 0 is an image without boxes. Image sizes are read from the image files.

            Coordinates are used as written: bbox = [xmin, ymin, xmax - xmin, ymax - ymin], area = w * h \
            (xmax is an edge, not an inclusive pixel). Categories get ids 1..K in --classes order, else in \
            sorted name order. Images get ids 1..N; file_name is relative to --images. \
            --difficult keep (default) writes difficult objects as ordinary boxes; crowd writes them with \
            iscrowd 1, which mmdet ignores in training and evaluation (as its VOC loader does).

            Rejected (reported with file and line, left out): a coordinate that is not a number, xmax <= xmin \
            or ymax <= ymin, a box wholly outside the image, a class not in --classes, an image that is missing \
            or unreadable (with its boxes), an image given twice, a malformed XML file, a CSV row with too few \
            fields. Clipped (reported, kept): a box reaching more than 1 px outside the image; by 1 px or less \
            it is clipped and only counted. If anything was rejected nothing is written and the exit code is 1, \
            unless --allow-bad (then the rest is written and the exit code is 0).

            Examples:
              ghm dataset convert --voc data/ --out data/train.json
              ghm dataset convert --csv labels.csv --images imgs/ --classes Tree --out train.json
              ghm dataset convert --voc a/ --voc b/ --images imgs/ --class-map Alive=Tree,Dead=Tree --out all.json
            """)

    @Option(name: .long, help: ArgumentHelp("A folder of Pascal VOC .xml files (repeatable).", valueName: "DIR"))
    var voc: [String] = []

    @Option(name: .long, help: ArgumentHelp("A box CSV file (repeatable).", valueName: "FILE"))
    var csv: [String] = []

    @Option(name: .long, help: ArgumentHelp("Folder holding the images; file_name is relative to it (default: the folder of the XML files or CSV file).", valueName: "DIR"))
    var images: String?

    @Option(name: .long, help: ArgumentHelp("Output COCO JSON.", valueName: "OUT.json"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("The classes, in category-id order; boxes of other classes are rejected.", valueName: "a,b,c"))
    var classes: String?

    @Option(name: .long, help: ArgumentHelp("Rename labels first (Alive=Tree,Dead=Tree).", valueName: "OLD=NEW,…"))
    var classMap: String?

    @Option(name: .long, help: ArgumentHelp("keep: difficult objects are ordinary boxes; crowd: iscrowd 1.", valueName: "keep|crowd"))
    var difficult: String = "keep"

    @Flag(name: .long, help: "Write the good boxes even when some input was rejected (exit code 0).")
    var allowBad = false

    func validate() throws {
        if voc.isEmpty && csv.isEmpty { throw ValidationError("give at least one --voc DIR or --csv FILE") }
        if DatasetConverter.Difficult(rawValue: difficult) == nil { throw ValidationError("--difficult must be keep or crowd") }
        if images == nil {
            let folders = Set(voc.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
                              + csv.map { URL(fileURLWithPath: $0).deletingLastPathComponent().standardizedFileURL.path })
            if folders.count > 1 { throw ValidationError("the inputs are in different folders: give --images DIR") }
        }
        _ = try parsedClassMap()
    }

    func parsedClassMap() throws -> [String: String] {
        var map: [String: String] = [:]
        for pair in (classMap ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--class-map: '\(pair)' is not OLD=NEW")
            }
            map[parts[0]] = parts[1]
        }
        return map
    }

    func run() throws {
        try reportingErrors {
            let dir = images ?? voc.first ?? URL(fileURLWithPath: csv[0]).deletingLastPathComponent().path
            let names = classes?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let options = DatasetConverter.Options(imagesDir: dir, classes: names, classMap: try parsedClassMap(),
                                                   difficult: DatasetConverter.Difficult(rawValue: difficult)!)
            var converter = DatasetConverter(options: options, log: IssueLog(onIssue: { printIssue($0) }))
            let result = try converter.convert(voc: voc, csv: csv)
            let coco = result.dataset.coco
            var summary = "[convert] \(coco.images.count) images, \(coco.annotations.count) boxes, "
                + "\(coco.categories.count) classes (\(coco.classNames.joined(separator: ", "))); "
                + "\(result.rejected) rejected, \(result.clipped) clipped"
            if result.slightlyClipped > 0 { summary += ", \(result.slightlyClipped) clipped by 1 px or less" }
            if result.rejected > 0 && !allowBad {
                printSummary(summary + "; nothing written (--allow-bad writes the rest)")
                throw ExitCode(1)
            }
            try result.dataset.write(to: out)
            printSummary(summary + " → \(out)")
        }
    }
}

struct DatasetTileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tile",
        abstract: "Cut large images into overlapping tiles, with their boxes clipped to the tiles.",
        discussion: """
            Windows of --size move by round(size * (1 - overlap)); the last one on each axis is aligned to the \
            image's edge, so the whole image is covered. An image smaller than the tile is one tile of its own \
            size (not padded). Each box is clipped to each tile it reaches into; the piece is kept when its area \
            is at least --min-visible of the box's area, else left out of that tile (counted in the summary: by \
            request, not an error). A box kept in no tile at all is named on stderr.

            Writes OUT/images/<name>_<x>_<y>.png (3-channel 8-bit; PNG keeps the pixels exact) and \
            OUT/annotations.json, where file_name is relative to OUT/images and each image also has \
            "source_file" (the source's file_name), "tile_x" and "tile_y" (its corner in the source); COCO \
            readers ignore these keys, `ghm dataset split` uses source_file. Tiles without boxes are kept \
            (they teach the background) unless --skip-empty. An image that cannot be read is reported and \
            skipped (exit code 1).

            Example:
              ghm dataset tile --ann train.json --images data/ --size 400x400 --overlap 0.25 \\
                  --min-visible 0.5 --out tiles/
            """)

    @Option(name: .long, help: ArgumentHelp("Input COCO JSON.", valueName: "ANN.json"))
    var ann: String

    @Option(name: .long, help: ArgumentHelp("Folder holding the source images.", valueName: "DIR"))
    var images: String

    @Option(name: .long, help: ArgumentHelp("Tile size, WxH or one number for squares.", valueName: "WxH"))
    var size: String = "400x400"

    @Option(name: .long, help: ArgumentHelp("Overlap between neighbouring tiles, a fraction in [0, 1).", valueName: "F"))
    var overlap: Double = 0.25

    @Option(name: .long, help: ArgumentHelp("Keep a clipped box when at least this fraction of its area is in the tile.", valueName: "F"))
    var minVisible: Double = 0.5

    @Option(name: .long, help: ArgumentHelp("Tile format: png, jpg or source (the source's extension).", valueName: "EXT"))
    var format: String = "png"

    @Flag(name: .long, help: "Leave out tiles without any box.")
    var skipEmpty = false

    @Option(name: .long, help: ArgumentHelp("Output folder.", valueName: "DIR"))
    var out: String

    @Flag(name: .long, help: "No progress line.")
    var quiet = false

    static let formats = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "source"]

    func parsedSize() throws -> (Int, Int) {
        guard let s = TileSettings.parseSize(size) else {
            throw ValidationError("--size must be WxH or N with positive integers, found '\(size)'")
        }
        return s
    }

    func validate() throws {
        _ = try parsedSize()
        guard Self.formats.contains(format.lowercased()) else {
            throw ValidationError("--format must be one of \(Self.formats.joined(separator: ", ")), found '\(format)'")
        }
        guard overlap >= 0 && overlap < 1 else { throw ValidationError("--overlap must be in [0, 1)") }
        guard minVisible > 0 && minVisible <= 1 else { throw ValidationError("--min-visible must be in (0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let (w, h) = try parsedSize()
            let input = try DatasetFile.load(path: ann)
            let options = DatasetTiler.Options(tileWidth: w, tileHeight: h, overlap: overlap, minVisible: minVisible,
                                               imagesDir: images, outDir: out, ext: format.lowercased() == "source" ? nil : format.lowercased(),
                                               skipEmpty: skipEmpty)
            let progress = quiet ? nil : ProgressReporter(total: input.coco.images.count, label: "tile")
            var tiler = DatasetTiler(options: options, log: IssueLog(onIssue: { issue in
                FileHandle.standardError.write(Data((issue.description + "\n").utf8))
            }))
            let s = try tiler.run(input, inputPath: ann, progress: progress)
            printSummary("[tile] \(s.sourceImages) images → \(s.tiles) tiles"
                + (s.emptyTilesSkipped > 0 ? " (\(s.emptyTilesSkipped) empty tiles skipped)" : "")
                + "; \(s.boxesIn) boxes → \(s.piecesKept) box pieces, \(s.piecesDropped) pieces under --min-visible "
                + "\(minVisible) dropped, \(s.boxesLost) boxes in no tile"
                + (s.imagesFailed > 0 ? "; \(s.imagesFailed) images failed" : "")
                + " → \((out as NSString).appendingPathComponent("annotations.json"))")
            if s.imagesFailed > 0 { throw ExitCode(1) }
        }
    }
}

struct DatasetSplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Split a COCO JSON into train and val by source image (tiles of one source stay together).",
        discussion: """
            The source of an image is its "source_file" (written by `ghm dataset tile`), else its file_name. \
            --val names the val sources (a full source, its file name, or its stem); --val-fraction F puts \
            round(F × number of sources) sources, drawn with --seed, in val. Images and annotations keep their \
            ids; both halves keep all categories.

            Examples:
              ghm dataset split --ann tiles/annotations.json --val SOAP_061.png --out-train train.json --out-val val.json
              ghm dataset split --ann all.json --val-fraction 0.2 --seed 1 --out-train train.json --out-val val.json
            """)

    @Option(name: .long, help: ArgumentHelp("Input COCO JSON.", valueName: "ANN.json"))
    var ann: String

    @Option(name: .long, help: ArgumentHelp("Val sources, comma-separated.", valueName: "SOURCE,…"))
    var val: String?

    @Option(name: .long, help: ArgumentHelp("Fraction of the sources for val.", valueName: "F"))
    var valFraction: Double?

    @Option(name: .long, help: ArgumentHelp("Seed of the --val-fraction draw.", valueName: "S"))
    var seed: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp("Train half.", valueName: "TRAIN.json"))
    var outTrain: String

    @Option(name: .long, help: ArgumentHelp("Val half.", valueName: "VAL.json"))
    var outVal: String

    func validate() throws {
        guard (val == nil) != (valFraction == nil) else { throw ValidationError("give either --val or --val-fraction") }
        if let f = valFraction, !(f >= 0 && f <= 1) { throw ValidationError("--val-fraction must be in [0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let input = try DatasetFile.load(path: ann)
            let halves = if let val {
                try DatasetSplit.split(input, val: val.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            } else {
                try DatasetSplit.split(input, valFraction: valFraction!, seed: seed)
            }
            try halves.train.write(to: outTrain)
            try halves.val.write(to: outVal)
            for (name, half, path) in [("train", halves.train, outTrain), ("val", halves.val, outVal)] {
                let stats = DatasetStats(half)
                printSummary("[split] \(name): \(stats.sources) source\(stats.sources == 1 ? "" : "s"), \(stats.images) images, \(stats.boxes) boxes → \(path)")
            }
        }
    }
}

struct DatasetStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Images, boxes per class, boxes per image, box sizes of a COCO JSON.",
        discussion: """
            Box width, height and area are given as min, 5th, 25th, 50th, 75th, 95th percentile and max (linear \
            interpolation, numpy's default). --json prints the same numbers as JSON.

            Example:
              ghm dataset stats --ann tiles/annotations.json
            """)

    @Option(name: .long, help: ArgumentHelp("COCO JSON.", valueName: "ANN.json"))
    var ann: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let stats = DatasetStats(try DatasetFile.load(path: ann))
            print(json ? stats.jsonText() : stats.text(), terminator: json ? "" : "\n")
        }
    }
}
