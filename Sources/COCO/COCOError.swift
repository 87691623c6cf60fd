import Foundation

/// Every failure of the COCO module: a bad file, bad JSON, a bad item in a dataset or in a
/// results file. The message names the file and the item (a JSON path such as
/// `annotations[12].bbox` or `results[3].score`) so that a user can find the problem.
public struct COCOError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// The file the problem is in, if any.
    public let file: String?
    /// The item: a JSON path (`annotations[12].bbox`), a key, or nil for the whole file.
    public let item: String?
    /// What is wrong.
    public let reason: String

    public init(file: String? = nil, item: String? = nil, _ reason: String) {
        self.file = file
        self.item = (item?.isEmpty ?? true) ? nil : item
        self.reason = reason
    }

    /// `file: item: reason`, leaving out the parts that are nil.
    public var message: String {
        [file, item, reason].compactMap { $0 }.joined(separator: ": ")
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}
