import Foundation

/// One problem found in the input, printed as `file:line: message` (`file: message` when there is no line).
/// `rejected` items (a row, a box, an image, a whole file) are left out of the output; `clipped` boxes are kept,
/// cut to the image; `note`s change nothing that a user would not want but are said anyway.
public struct DatasetIssue: CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable { case rejected, clipped, note }

    public let file: String
    public let line: Int?
    public let kind: Kind
    public let message: String

    public init(file: String, line: Int?, _ kind: Kind, _ message: String) {
        self.file = file
        self.line = line
        self.kind = kind
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return "\(place): \(kind == .note ? "" : kind.rawValue + ": ")\(message)"
    }
}

/// The issues of one run, in the order found, and their counts.
public struct IssueLog: Sendable {
    public private(set) var issues: [DatasetIssue] = []
    /// Called with each issue as it is found (the tool prints it at once).
    var onIssue: (@Sendable (DatasetIssue) -> Void)?

    public init(onIssue: (@Sendable (DatasetIssue) -> Void)? = nil) { self.onIssue = onIssue }

    mutating func add(_ issue: DatasetIssue) {
        issues.append(issue)
        onIssue?(issue)
    }

    mutating func add(_ file: String, _ line: Int?, _ kind: DatasetIssue.Kind, _ message: String) {
        add(DatasetIssue(file: file, line: line, kind, message))
    }

    public func count(_ kind: DatasetIssue.Kind) -> Int { issues.lazy.filter { $0.kind == kind }.count }
}

/// A failure that stops a dataset command: a file that cannot be read or written, bad options.
public struct DatasetError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
