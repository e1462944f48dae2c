// Jinja lexer: template text -> tokens, with Jinja's whitespace control as
// transformers configures it (trim_blocks and lstrip_blocks on):
//   {%- / {{- / {#-   strip whitespace before the tag
//   -%} / -}} / -#}   strip whitespace after it
//   trim_blocks       drop the first newline after %} and #}
//   lstrip_blocks     drop spaces/tabs between a line start and {% or {#
//   {%+ / +%}         disable lstrip / trim for that tag
// One trailing newline of the template is dropped (keep_trailing_newline=False).

import Tessera

struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var location: SourceLocation
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private var pos = 0
    private var tokens: [Token] = []
    private var lineStarts: [Int] = [0]
    private let trimBlocks: Bool
    private let lstripBlocks: Bool

    static func tokenize(_ source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) throws(TemplateError)
        -> [Token]
    {
        var text = Array(source.unicodeScalars)
        // Newlines are normalized to \n, as Jinja does.
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == "\r" {
                normalized.append("\n")
                if i + 1 < text.count, text[i + 1] == "\n" { i += 1 }
            } else {
                normalized.append(text[i])
            }
            i += 1
        }
        text = normalized
        if text.last == "\n" { text.removeLast() }
        var lexer = Lexer(src: text, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        try lexer.run()
        return lexer.tokens
    }

    private init(src: [Unicode.Scalar], trimBlocks: Bool, lstripBlocks: Bool) {
        self.src = src
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    private func location(_ offset: Int) -> SourceLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at offset: Int) -> TemplateError {
        let l = location(offset)
        return TemplateError(.syntax, message, line: l.line, column: l.column)
    }

    private func peek(_ k: Int = 0) -> Unicode.Scalar? {
        pos + k < src.count ? src[pos + k] : nil
    }

    private func starts(with s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    private mutating func emit(_ kind: Token.Kind, at offset: Int) {
        tokens.append(Token(kind: kind, location: location(offset)))
    }

    private mutating func run() throws(TemplateError) {
        var lineStarting = true
        while pos < src.count {
            // Find the next tag opener.
            var i = pos
            var opener: Unicode.Scalar? = nil
            while i + 1 < src.count {
                if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" {
                    opener = src[i + 1]
                    break
                }
                i += 1
            }
            guard let kind = opener else {
                emitData(Array(src[pos...]), at: pos)
                pos = src.count
                break
            }
            var text = Array(src[pos..<i])
            let sign: Unicode.Scalar? = i + 2 < src.count && (src[i + 2] == "-" || src[i + 2] == "+") ? src[i + 2] : nil
            if sign == "-" {
                while let last = text.last, Self.isSpace(last) { text.removeLast() }
            } else if sign != "+", lstripBlocks, kind != "{" {
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lineStart > 0 || lineStarting, lineStart < text.count,
                    text[lineStart...].allSatisfy({ Self.isSpace($0) })
                {
                    text.removeSubrange(lineStart...)
                }
            }
            emitData(text, at: pos)
            pos = i + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#":
                lineStarting = try skipComment(openedAt: i)
            case "{":
                emit(.variableBegin, at: i)
                lineStarting = try lexExpression(until: "}", openedAt: i)
            default:
                if try lexRaw(openedAt: i) {
                    lineStarting = false
                    continue
                }
                emit(.blockBegin, at: i)
                lineStarting = try lexExpression(until: "%", openedAt: i)
            }
        }
        emit(.eof, at: src.count)
    }

    private mutating func emitData(_ text: [Unicode.Scalar], at offset: Int) {
        guard !text.isEmpty else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        emit(.data(String(view)), at: offset)
    }

    /// Consumes the end of a tag (`-X}`, `+X}` or `X}`) at pos, with
    /// trimming; returns whether what it consumed ended in a newline.
    private mutating func consumeTagEnd(_ closer: Unicode.Scalar, trims: Bool) -> Bool {
        if peek() == "-" {
            pos += 3
            var ended = false
            while let c = peek(), Self.isSpace(c) {
                ended = c == "\n"
                pos += 1
            }
            return ended
        }
        if peek() == "+" {
            pos += 3
            return false
        }
        pos += 2
        if trims, trimBlocks, peek() == "\n" {
            pos += 1
            return true
        }
        return false
    }

    private func isTagEnd(_ closer: Unicode.Scalar) -> Bool {
        if peek() == closer, peek(1) == "}" { return true }
        if peek() == "-" || peek() == "+", peek(1) == closer, peek(2) == "}" { return true }
        return false
    }

    private mutating func skipComment(openedAt start: Int) throws(TemplateError) -> Bool {
        while pos < src.count {
            if isTagEnd("#") { return consumeTagEnd("#", trims: true) }
            pos += 1
        }
        throw error("unclosed comment", at: start)
    }

    /// `{% raw %}...{% endraw %}`: the body is data, untouched.
    private mutating func lexRaw(openedAt start: Int) throws(TemplateError) -> Bool {
        var j = pos
        while j < src.count, Self.isSpace(src[j]) { j += 1 }
        guard starts(with: "raw", at: j) else { return false }
        j += 3
        while j < src.count, Self.isSpace(src[j]) { j += 1 }
        let save = pos
        pos = j
        guard isTagEnd("%") else { pos = save; return false }
        _ = consumeTagEnd("%", trims: true)
        let bodyStart = pos
        while pos < src.count {
            if src[pos] == "{", peek(1) == "%" {
                var k = pos + 2
                if k < src.count, src[k] == "-" || src[k] == "+" { k += 1 }
                while k < src.count, Self.isSpace(src[k]) { k += 1 }
                if starts(with: "endraw", at: k) {
                    var body = Array(src[bodyStart..<pos])
                    if src[pos + 2] == "-" { while let l = body.last, Self.isSpace(l) { body.removeLast() } }
                    emitData(body, at: bodyStart)
                    pos = k + 6
                    while let c = peek(), Self.isSpace(c) { pos += 1 }
                    guard isTagEnd("%") else { throw error("malformed endraw", at: pos) }
                    _ = consumeTagEnd("%", trims: true)
                    return true
                }
            }
            pos += 1
        }
        throw error("unclosed raw block", at: start)
    }

    private mutating func lexExpression(until closer: Unicode.Scalar, openedAt start: Int) throws(TemplateError) -> Bool
    {
        var depth = 0
        while true {
            while let c = peek(), Self.isSpace(c) { pos += 1 }
            guard let c = peek() else {
                throw error(closer == "}" ? "unclosed '{{'" : "unclosed '{%'", at: start)
            }
            if depth == 0, isTagEnd(closer) {
                let at = pos
                let newline = consumeTagEnd(closer, trims: closer == "%")
                emit(closer == "}" ? .variableEnd : .blockEnd, at: at)
                return newline
            }
            let at = pos
            if c == "_" || c.properties.isAlphabetic {
                var name = String.UnicodeScalarView()
                while let d = peek(), d == "_" || d.properties.isAlphabetic || ("0"..."9").contains(d) {
                    name.append(d)
                    pos += 1
                }
                emit(.name(String(name)), at: at)
            } else if ("0"..."9").contains(c) {
                try lexNumber(at: at)
            } else if c == "'" || c == "\"" {
                emit(.string(try lexString(quote: c)), at: at)
            } else {
                let three = [peek(), peek(1)].compactMap { $0 }.map(String.init).joined()
                let ops2 = ["//", "**", "==", "!=", "<=", ">="]
                if ops2.contains(three) {
                    pos += 2
                    emit(.op(three), at: at)
                } else if "+-*/%~<>=()[]{}.,:|".unicodeScalars.contains(c) {
                    pos += 1
                    if c == "(" || c == "[" || c == "{" { depth += 1 }
                    if c == ")" || c == "]" || c == "}" { depth = max(0, depth - 1) }
                    emit(.op(String(c)), at: at)
                } else {
                    throw error("unexpected character '\(c)'", at: at)
                }
            }
        }
    }

    private mutating func lexNumber(at start: Int) throws(TemplateError) {
        var text = ""
        var isFloat = false
        func digits(_ lexer: inout Lexer, _ text: inout String) {
            while let d = lexer.peek(), ("0"..."9").contains(d) || d == "_" {
                if d != "_" { text.unicodeScalars.append(d) }
                lexer.pos += 1
            }
        }
        digits(&self, &text)
        if peek() == ".", let n = peek(1), ("0"..."9").contains(n) {
            isFloat = true
            text += "."
            pos += 1
            digits(&self, &text)
        }
        if let e = peek(), e == "e" || e == "E" {
            var k = 1
            if peek(1) == "+" || peek(1) == "-" { k = 2 }
            if let d = peek(k), ("0"..."9").contains(d) {
                isFloat = true
                text += "e" + (k == 2 ? String(peek(1)!) : "")
                pos += k
                digits(&self, &text)
            }
        }
        if isFloat {
            guard let v = Double(text) else { throw error("invalid number \(text)", at: start) }
            emit(.float(v), at: start)
        } else {
            guard let v = Int(text) else { throw error("integer \(text) is too large", at: start) }
            emit(.integer(v), at: start)
        }
    }

    /// A string literal with Python's escapes (Jinja decodes "unicode-escape").
    private mutating func lexString(quote: Unicode.Scalar) throws(TemplateError) -> String {
        let start = pos
        pos += 1
        var out = String.UnicodeScalarView()
        while let c = peek() {
            pos += 1
            if c == quote { return String(out) }
            guard c == "\\" else { out.append(c); continue }
            guard let e = peek() else { break }
            pos += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "0": out.append("\u{00}")
            case "\n": break
            case "x", "u", "U":
                let n = e == "x" ? 2 : e == "u" ? 4 : 8
                var value: UInt32 = 0
                for _ in 0..<n {
                    guard let h = peek(), let d = UInt32(String(h), radix: 16) else {
                        throw error("invalid \\\(e) escape", at: pos)
                    }
                    value = value * 16 + d
                    pos += 1
                }
                guard let s = Unicode.Scalar(value) else { throw error("invalid \\\(e) escape", at: pos) }
                out.append(s)
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw error("unterminated string", at: start)
    }
}
