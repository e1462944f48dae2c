// einsum: Einstein summation over the operands' labelled axes. Traces
// (a label repeated in one operand) become diagonals, labels used by one
// operand only are summed first, then operands are contracted pairwise, left
// to right, each contraction one batched matmul over
// (shared kept labels) x (left-only) x (summed) and (summed) x (right-only).

/// The Einstein summation `subscripts` of `operands`, as numpy's `einsum`:
/// `"ij,jk->ik"` (matrix product), `"bij,bjk->bik"` (batched), `"ii->"`
/// (trace), `"i,j->ij"` (outer product), `"...ij->...ji"`; without `->` the
/// output is the labels used once, in alphabetical order. Labels of size 1
/// broadcast against the same label elsewhere.
///
/// ```swift
/// let c = einsum("ij,jk->ik", a, b)   // matmul(a, b)
/// ```
public func einsum(_ subscripts: String, _ operands: Tensor...) -> Tensor {
    let (inputTerms, outputTerm) = parseEinsum(subscripts, operands)
    opPrecondition(Set(outputTerm).count == outputTerm.count, "einsum", "output \"\(subscripts)\" repeats a label")
    let dtype = operands.dropFirst().reduce(operands[0].dtype) { promoteTypes($0, $1.dtype) }
    opPrecondition(
        operands.count == 1 || dtype.isFloatingPoint, "einsum",
        "contractions need floating-point operands, got \(operands.map(\.dtype))")

    // Traces: a repeated label in one operand becomes its diagonal.
    var terms: [[Character]] = []
    var tensors: [Tensor] = []
    for (term, operand) in zip(inputTerms, operands) {
        var t = term, x = operand.asType(dtype)
        while let (i, j) = firstRepeat(t) {
            opPrecondition(
                x.shape[i] == x.shape[j], "einsum",
                "label \(t[i]) has sizes \(x.shape[i]) and \(x.shape[j]) in operand of shape \(operand.shape)")
            x = x.diagonal(axis1: i, axis2: j)
            let label = t[i]
            t.remove(at: j)
            t.remove(at: i)
            t.append(label)
        }
        terms.append(t)
        tensors.append(x)
    }

    // One size per label; size-1 axes broadcast to it.
    var sizes: [Character: Int] = [:]
    for (t, x) in zip(terms, tensors) {
        for (label, n) in zip(t, x.shape) {
            let known = sizes[label] ?? n
            opPrecondition(
                known == n || known == 1 || n == 1, "einsum",
                "label \(label) has sizes \(known) and \(n) in \"\(subscripts)\" with shapes \(operands.map(\.shape))")
            sizes[label] = Swift.max(known, n) == 1 ? 1 : (known == 1 ? n : known)
        }
    }
    for k in tensors.indices { tensors[k] = tensors[k].broadcast(to: terms[k].map { sizes[$0]! }) }
    for label in outputTerm {
        opPrecondition(sizes[label] != nil, "einsum", "output label \(label) is not in any input of \"\(subscripts)\"")
    }

    // Sum labels no other operand and not the output uses.
    for k in tensors.indices {
        let others = Set(outputTerm).union(terms.indices.filter { $0 != k }.flatMap { terms[$0] })
        let lonely = terms[k].indices.filter { !others.contains(terms[k][$0]) }
        if !lonely.isEmpty {
            tensors[k] = tensors[k].sum(axes: lonely)
            terms[k] = terms[k].indices.filter { !lonely.contains($0) }.map { terms[k][$0] }
        }
    }

    var result = tensors[0], term = terms[0]
    for k in 1..<Swift.max(tensors.count, 1) {
        let keep = Set(outputTerm).union(terms[(k + 1)...].flatMap { $0 })
        (result, term) = contract(result, term, tensors[k], terms[k], keep: keep, sizes: sizes)
    }
    return result.transposed(axes: outputTerm.map { term.firstIndex(of: $0)! })
}

/// Input terms and the output term; `...` becomes reserved labels, right-aligned across operands.
private func parseEinsum(_ subscripts: String, _ operands: [Tensor]) -> ([[Character]], [Character]) {
    opPrecondition(!operands.isEmpty, "einsum", "needs at least one operand")
    let text = subscripts.filter { !$0.isWhitespace }
    let sides = pieces(text, "->")
    opPrecondition(sides.count <= 2, "einsum", "\"\(subscripts)\" has more than one ->")
    let inputs = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    opPrecondition(
        inputs.count == operands.count, "einsum",
        "\"\(subscripts)\" names \(inputs.count) operands but \(operands.count) were given")
    // Reserved labels for ellipsis axes: characters no subscript uses.
    let ellipsisLabels = (0..<32).map { Character(Unicode.Scalar(0xE000 + $0)!) }
    var ellipsisRank = 0
    var terms: [[Character]] = []
    for (input, x) in zip(inputs, operands) {
        let pieces = pieces(input, "...")
        opPrecondition(pieces.count <= 2, "einsum", "operand \"\(input)\" has more than one ellipsis")
        let explicit = pieces.joined()
        for c in explicit {
            opPrecondition(c.isLetter && c.isASCII, "einsum", "label \(c) in \"\(subscripts)\" is not a letter")
        }
        if pieces.count == 2 {
            let rank = x.ndim - explicit.count
            opPrecondition(rank >= 0, "einsum", "operand \"\(input)\" has more labels than shape \(x.shape)")
            ellipsisRank = Swift.max(ellipsisRank, rank)
            terms.append(Array(pieces[0]) + Array(ellipsisLabels[(32 - rank)...]) + Array(pieces[1]))
        } else {
            opPrecondition(
                explicit.count == x.ndim, "einsum", "operand \"\(input)\" does not label the axes of shape \(x.shape)")
            terms.append(Array(explicit))
        }
    }
    let ellipsis = Array(ellipsisLabels[(32 - ellipsisRank)...])
    if sides.count == 2 {
        let pieces = pieces(sides[1], "...")
        return (terms, pieces.count == 2 ? Array(pieces[0]) + ellipsis + Array(pieces[1]) : Array(sides[1]))
    }
    var counts: [Character: Int] = [:]
    for t in terms { for c in t where !ellipsis.contains(c) { counts[c, default: 0] += 1 } }
    return (terms, ellipsis + counts.filter { $0.value == 1 }.keys.sorted())
}

/// `text` cut at every `separator`, empty pieces kept.
private func pieces(_ text: String, _ separator: String) -> [String] {
    var result: [String] = [], current = "", rest = Substring(text)
    while !rest.isEmpty {
        if rest.hasPrefix(separator) {
            result.append(current)
            current = ""
            rest = rest.dropFirst(separator.count)
        } else {
            current.append(rest.removeFirst())
        }
    }
    return result + [current]
}

private func firstRepeat(_ term: [Character]) -> (Int, Int)? {
    for i in term.indices {
        if let j = term[(i + 1)...].firstIndex(of: term[i]) { return (i, j) }
    }
    return nil
}

/// One pairwise contraction as a batched matmul; returns the result and its labels.
private func contract(
    _ a: Tensor, _ ta: [Character], _ b: Tensor, _ tb: [Character], keep: Set<Character>, sizes: [Character: Int]
) -> (Tensor, [Character]) {
    let shared = ta.filter { tb.contains($0) }
    let batch = shared.filter { keep.contains($0) }
    let summed = shared.filter { !keep.contains($0) }
    let left = ta.filter { !tb.contains($0) }
    let right = tb.filter { !ta.contains($0) }
    func size(_ labels: [Character]) -> Int { labels.reduce(1) { $0 * sizes[$1]! } }
    let x = a.transposed(axes: (batch + left + summed).map { ta.firstIndex(of: $0)! })
        .reshaped([size(batch), size(left), size(summed)])
    let y = b.transposed(axes: (batch + summed + right).map { tb.firstIndex(of: $0)! })
        .reshaped([size(batch), size(summed), size(right)])
    let labels = batch + left + right
    return (matmul(x, y).reshaped(labels.map { sizes[$0]! }), labels)
}
