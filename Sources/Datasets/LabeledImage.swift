/// A box as read from a VOC or CSV file, before any check: the coordinates as written, so that a bad value can be
/// reported as the user wrote it, and the line it came from.
struct RawBox: Sendable {
    var label: String
    /// xmin, ymin, xmax, ymax as written.
    var corners: [String]
    var difficult = false
    var line: Int
}

/// An image as read from a VOC file or gathered from the rows of a CSV file.
struct RawImage: Sendable {
    /// The image's name as written (relative to the images folder).
    var fileName: String
    /// From the VOC `<size>`; nil or 0 when absent (the image header is read then).
    var width: Int?
    var height: Int?
    var boxes: [RawBox] = []
    /// The annotation file and the line that names the image.
    var file: String
    var line: Int?
}
