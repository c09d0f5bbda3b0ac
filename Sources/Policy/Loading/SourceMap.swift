import Yams

/// Maps an offset inside a YAML scalar's value back to the file's line and column.
///
/// A scalar's value is not its source text: quotes, escapes, block indicators, indentation and
/// line folding all differ. The value's characters appear in the source in order, so the map walks
/// both side by side and skips source characters that formatting explains (whitespace, quotes,
/// backslashes, `|`/`>` indicators). Where the two cannot be aligned it answers the scalar's start.
struct SourceMap: Sendable {
    let file: String
    private let lines: [[Unicode.Scalar]]

    init(file: String, text: String) {
        self.file = file
        var lines: [[Unicode.Scalar]] = [[]]
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                lines.append([])
            } else if scalar != "\r" {
                lines[lines.count - 1].append(scalar)
            }
        }
        self.lines = lines
    }

    func location(of node: Node) -> SourceLocation {
        location(of: node.mark)
    }

    func location(of mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// The file position of the character at `offset` (in Unicode scalars) of `node`'s value.
    func location(ofOffset offset: Int, in node: Node) -> SourceLocation {
        let start = location(of: node)
        guard let value = node.scalar?.string else { return start }
        let characters = Array(value.unicodeScalars)
        var line = start.line - 1
        var column = start.column - 1

        func current() -> Unicode.Scalar? {
            guard line < lines.count else { return nil }
            return column < lines[line].count ? lines[line][column] : "\n"
        }
        func step() {
            guard line < lines.count else { return }
            if column < lines[line].count {
                column += 1
            } else {
                line += 1
                column = 0
            }
        }
        let formatting: Set<Unicode.Scalar> = [" ", "\t", "\n", "'", "\"", "\\", "|", ">", "-", "+"]

        for index in 0...min(offset, characters.count) {
            let wanted: Unicode.Scalar? = index < characters.count ? characters[index] : nil
            if let wanted {
                // Skip what formatting explains until the value's character shows up.
                while let found = current(), found != wanted {
                    guard formatting.contains(found) || (wanted == " " && found == "\n") else { return start }
                    step()
                }
                guard current() != nil else { return start }
            }
            if index == offset {
                return SourceLocation(file: file, line: line + 1, column: column + 1)
            }
            step()
        }
        return SourceLocation(file: file, line: line + 1, column: column + 1)
    }
}
