import BamCorpora
import BamFormats
import Foundation
import Testing

/// Helpers shared by the corpus tests.
enum CorpusFixtures {
    static func docs(_ domain: CorpusDomain, _ split: CorpusSplit, seed: UInt64 = 1, bytes: Int) -> [String] {
        Corpus.documents(CorpusOptions(domain: domain, split: split, seed: seed, bytes: bytes))
    }

    /// Sentences of knowledge articles (the lines after the title; sentences end with "." before a space or the end).
    static func sentences(_ doc: String) -> [String] {
        var out: [String] = []
        for line in doc.split(separator: "\n").dropFirst() {
            var current = ""
            let chars = Array(line)
            for (i, ch) in chars.enumerated() {
                current.append(ch)
                if ch == "." && (i + 1 == chars.count || chars[i + 1] == " ") {
                    out.append(current.trimmingCharacters(in: .whitespaces))
                    current = ""
                }
            }
            #expect(current.trimmingCharacters(in: .whitespaces).isEmpty, "unterminated sentence in \(line)")
        }
        return out
    }
}

// MARK: - Exact arithmetic for the math checker

struct Rational: Equatable, CustomStringConvertible {
    var n: Int, d: Int
    init(_ n: Int, _ d: Int = 1) {
        precondition(d != 0)
        var g = n.magnitude, h = d.magnitude
        while h != 0 { (g, h) = (h, g % h) }
        let s = d < 0 ? -1 : 1
        self.n = s * n / Int(max(g, 1)); self.d = s * d / Int(max(g, 1))
    }
    static func + (a: Rational, b: Rational) -> Rational { Rational(a.n * b.d + b.n * a.d, a.d * b.d) }
    static func - (a: Rational, b: Rational) -> Rational { Rational(a.n * b.d - b.n * a.d, a.d * b.d) }
    static func * (a: Rational, b: Rational) -> Rational { Rational(a.n * b.n, a.d * b.d) }
    static func / (a: Rational, b: Rational) -> Rational? { b.n == 0 ? nil : Rational(a.n * b.d, a.d * b.n) }
    var description: String { d == 1 ? "\(n)" : "\(n)/\(d)" }
}

/// Parses and evaluates arithmetic as the math corpus writes it: integers, one-letter variables,
/// + - * /, parentheses, unary minus, and implicit multiplication without a space ("3x", "4(7)").
struct ArithmeticParser {
    enum Token: Equatable { case number(Int), variable(Character), op(Character), open, close }
    var tokens: [(Token, adjacent: Bool)] = []
    var i = 0
    let env: [Character: Rational]

    init?(_ s: String, env: [Character: Rational]) {
        self.env = env
        let cs = Array(s)
        var k = 0
        var spaceBefore = true
        while k < cs.count {
            let c = cs[k]
            if c == " " { spaceBefore = true; k += 1; continue }
            let adjacent = !spaceBefore
            spaceBefore = false
            if let digit = c.wholeNumberValue, c.isASCII {
                var v = digit
                k += 1
                while k < cs.count, let d = cs[k].wholeNumberValue, cs[k].isASCII { v = v * 10 + d; k += 1 }
                tokens.append((.number(v), adjacent)); continue
            }
            switch c {
            case "a"..."z": tokens.append((.variable(c), adjacent))
            case "+", "-", "*", "/": tokens.append((.op(c), adjacent))
            case "(": tokens.append((.open, adjacent))
            case ")": tokens.append((.close, adjacent))
            default: return nil
            }
            k += 1
        }
    }

    mutating func evaluate() -> Rational? {
        guard let v = expression(), i == tokens.count else { return nil }
        return v
    }

    mutating func expression() -> Rational? {
        guard var v = term() else { return nil }
        while i < tokens.count, case .op(let o) = tokens[i].0, o == "+" || o == "-" {
            i += 1
            guard let w = term() else { return nil }
            v = o == "+" ? v + w : v - w
        }
        return v
    }

    mutating func term() -> Rational? {
        guard var v = unary() else { return nil }
        while i < tokens.count {
            let (t, adjacent) = tokens[i]
            if case .op(let o) = t, o == "*" || o == "/" {
                i += 1
                guard let w = unary() else { return nil }
                if o == "*" { v = v * w } else { guard let q = v / w else { return nil }; v = q }
            } else if adjacent, t == .open || { if case .variable = t { return true }; return false }() {
                guard let w = primary() else { return nil }
                v = v * w
            } else {
                break
            }
        }
        return v
    }

    mutating func unary() -> Rational? {
        if i < tokens.count, tokens[i].0 == .op("-") {
            i += 1
            return unary().map { Rational(0) - $0 }
        }
        return primary()
    }

    mutating func primary() -> Rational? {
        guard i < tokens.count else { return nil }
        let t = tokens[i].0
        i += 1
        switch t {
        case .number(let n): return Rational(n)
        case .variable(let c): return env[c]
        case .open:
            guard let v = expression(), i < tokens.count, tokens[i].0 == .close else { return nil }
            i += 1
            return v
        default: return nil
        }
    }
}

/// Pieces of a math line between ": ", ", " and ". " (and a final "." or "?").
func mathChunks(_ line: String) -> [String] {
    var s = line
    if s.hasSuffix(".") || s.hasSuffix("?") { s.removeLast() }
    s = s.replacing(": ", with: "\u{1}").replacing(", ", with: "\u{1}").replacing(". ", with: "\u{1}")
    return s.split(separator: "\u{1}").map(String.init)
}

/// Checks every equality of a math document; returns how many were checked, or a failure message.
func checkMathDocument(_ doc: String) -> (checked: Int, failure: String?) {
    let lines = doc.split(separator: "\n").map(String.init)
    guard let answer = lines.last, answer.hasPrefix("Answer: ") else { return (0, "no Answer line") }
    var env: [Character: Rational] = [:]
    for chunk in mathChunks(String(answer.dropFirst(8))) {
        let parts = chunk.split(separator: " = ")
        if parts.count == 2, parts[0].count == 1, let c = parts[0].first, c.isLowercase, let v = Int(parts[1]) {
            env[c] = Rational(v)
        }
    }
    let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyz +-*/()=")
    var checked = 0
    for line in lines {
        for chunk in mathChunks(line) where chunk.contains("=") {
            let letters = chunk.split(whereSeparator: { !$0.isLetter })
            guard chunk.allSatisfy({ allowed.contains($0) }), letters.allSatisfy({ $0.count == 1 }) else {
                return (checked, "`\(chunk)`: an equality that is not pure arithmetic")
            }
            var values: [Rational] = []
            for side in chunk.split(separator: "=") {
                guard var p = ArithmeticParser(String(side), env: env), let v = p.evaluate() else {
                    return (checked, "`\(chunk)`: cannot evaluate `\(side)` with \(env)")
                }
                values.append(v)
            }
            if Set(values.map(\.description)).count != 1 {
                return (checked, "`\(chunk)` is false: \(values)")
            }
            checked += 1
        }
    }
    return (checked, nil)
}

// MARK: - A Python structure checker for the code corpus

enum PythonChecker {
    static let keywords: Set<String> = [
        "def", "return", "for", "in", "if", "elif", "else", "while", "not", "and", "or", "class", "True", "False",
        "None", "is", "__name__", "len", "sum", "max", "min", "sorted", "abs", "print", "range", "str", "enumerate",
        "zip", "reverse",
    ]

    /// The text with string literals emptied (the grammar never escapes quotes).
    static func stripStrings(_ s: String) -> String {
        var out = "", inString = false
        for ch in s {
            if ch == "\"" { inString.toggle(); out.append(ch); continue }
            if !inString { out.append(ch) }
        }
        return out
    }

    /// Identifiers that are read (not attribute names after ".", not keyword arguments).
    static func identifiers(_ s: String) -> [String] {
        var out: [String] = [], current = "", afterDot = false
        func flush() {
            if !current.isEmpty && !afterDot && !(current.first!.isNumber) { out.append(current) }
            current = ""
        }
        var previous: Character = " "
        for ch in s {
            if ch.isLetter || ch.isNumber || ch == "_" {
                if current.isEmpty { afterDot = previous == "." }
                current.append(ch)
            } else {
                flush()
            }
            previous = ch
        }
        flush()
        return out
    }

    /// Splits "a, b" into names.
    static func names(_ s: Substring) -> [String] {
        s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Arguments of the call whose "(" is at `open` (0 for "()").
    static func argumentCount(_ chars: [Character], open: Int) -> Int? {
        var depth = 0, commas = 0, k = open, empty = true
        while k < chars.count {
            let c = chars[k]
            if c == "(" || c == "[" || c == "{" { depth += 1 } else if c == ")" || c == "]" || c == "}" {
                depth -= 1
                if depth == 0 { return empty ? 0 : commas + 1 }
            } else if depth == 1 && c == "," { commas += 1 } else if depth >= 1 && c != " " { empty = false }
            k += 1
        }
        return nil
    }

    /// Problems in one module: indentation, balance, arity, names read before they are defined.
    static func problems(_ doc: String) -> [String] {
        var problems: [String] = []
        var arity: [String: Int] = [:]         // module functions and classes (constructor arity)
        var methodArity: [String: Int] = [:]
        var moduleNames: Set<String> = []
        var scope: Set<String> = []
        var previousIndent = 0, previousOpens = false
        var inClass = false
        for (n, raw) in doc.split(separator: "\n").enumerated() {
            let line = String(raw)
            let indent = line.prefix(while: { $0 == " " }).count
            let text = String(line.dropFirst(indent))
            if indent % 4 != 0 { problems.append("line \(n + 1): indentation \(indent)") }
            if previousOpens && indent != previousIndent + 4 { problems.append("line \(n + 1): block not indented") }
            if !previousOpens && indent > previousIndent { problems.append("line \(n + 1): unexpected indent") }
            previousOpens = text.hasSuffix(":")
            previousIndent = indent
            if text.hasPrefix("#") || text.hasPrefix("\"\"\"") { continue }
            let code = stripStrings(text)
            let chars = Array(code)
            var balance = 0
            for c in chars { if "([{".contains(c) { balance += 1 } else if ")]}".contains(c) { balance -= 1 } }
            if balance != 0 { problems.append("line \(n + 1): unbalanced brackets") }

            if indent == 0 { inClass = false }
            if text.hasPrefix("class ") {
                let name = String(text.dropFirst(6).dropLast())
                moduleNames.insert(name); inClass = true; continue
            }
            if text.hasPrefix("def ") {
                let name = String(text.dropFirst(4).prefix(while: { $0 != "(" }))
                let inside = text.drop(while: { $0 != "(" }).dropFirst().prefix(while: { $0 != ")" })
                let params = inside.isEmpty ? [] : names(inside)
                if indent == 0 {
                    arity[name] = params.count; moduleNames.insert(name)
                } else if inClass {
                    if name == "__init__" {
                        if let c = moduleNames.sorted().last(where: { arity[$0] == nil }) { arity[c] = params.count - 1 }
                    } else {
                        methodArity[name] = params.count - 1
                    }
                }
                scope = Set(params)
                continue
            }
            if indent == 0 { scope = [] }  // module level (main block or script)
            // Names this line defines before reading: comprehension variables; and after: targets.
            var defined: [String] = [], lineLocal: [String] = []
            var readPart = code
            if code.hasPrefix("for "), let inRange = code.range(of: " in ") {
                defined = names(code[code.index(code.startIndex, offsetBy: 4)..<inRange.lowerBound])
                readPart = String(code[inRange.upperBound...])
            } else if let eq = code.range(of: " = "), !code[..<eq.lowerBound].contains("(") {
                let target = String(code[..<eq.lowerBound])
                if !target.contains(".") && !target.contains("[") { defined = [target] }
                else { readPart = target + " " + code[eq.upperBound...] }
                if defined.count == 1 { readPart = String(code[eq.upperBound...]) }
            }
            var search = readPart[...]
            while let r = search.range(of: " for ") {
                let rest = search[r.upperBound...]
                if let inR = rest.range(of: " in ") { lineLocal += names(rest[..<inR.lowerBound]) }
                search = rest
            }
            for name in identifiers(readPart) where !keywords.contains(name) && name != "self" {
                if !scope.contains(name) && !moduleNames.contains(name) && !lineLocal.contains(name) {
                    problems.append("line \(n + 1): `\(name)` read before it is defined")
                }
            }
            scope.formUnion(defined)
            if indent == 0 { moduleNames.formUnion(defined) }
            // Arity of calls to module functions, constructors and methods.
            for (k, c) in chars.enumerated() where c == "(" && k > 0 {
                var s = k - 1
                while s >= 0 && (chars[s].isLetter || chars[s].isNumber || chars[s] == "_") { s -= 1 }
                let name = String(chars[(s + 1)..<k])
                let isMethod = s >= 0 && chars[s] == "."
                let expected = isMethod ? methodArity[name] : arity[name]
                if let expected, let got = argumentCount(chars, open: k), got != expected {
                    problems.append("line \(n + 1): \(name) takes \(expected) arguments, called with \(got)")
                }
            }
        }
        return problems
    }
}

// MARK: - Tests

@Suite("Corpora: generated domain text")
struct CorpusTests {
    /// FNV-1a 64 of `Corpus.generate(domain, split, seed: 1, bytes: 20_000)`. A change here means the
    /// text changed: intended (update the values and say so in the commit) or platform drift (a bug).
    static let pinned: [String: UInt64] = [
        "math/train": 15_203_052_596_298_741_195, "math/heldout": 13_631_409_049_969_003_430,
        "code/train": 8_707_705_190_283_072_040, "code/heldout": 14_404_774_727_095_704_356,
        "knowledge/train": 3_516_201_384_733_873_994, "knowledge/heldout": 5_580_775_249_767_844_450,
        "general/train": 18_031_132_439_543_196_592, "general/heldout": 5_435_099_869_044_961_194,
    ]

    @Test("the same options give the same bytes; the checksums are pinned", arguments: CorpusDomain.allCases)
    func determinism(domain: CorpusDomain) {
        for split in CorpusSplit.allCases {
            let a = Corpus.generate(domain, split: split, seed: 1, bytes: 20_000)
            let b = Corpus.generate(domain, split: split, seed: 1, bytes: 20_000)
            #expect(a == b)
            let key = "\(domain.rawValue)/\(split.rawValue)"
            #expect(fnv1a64(a.utf8) == Self.pinned[key], "\(key): fnv1a64 \(fnv1a64(a.utf8))")
            #expect(Corpus.generate(domain, split: split, seed: 2, bytes: 20_000) != a, "\(key): seed ignored")
        }
    }

    @Test("byte budget, document format and character set", arguments: CorpusDomain.allCases)
    func format(domain: CorpusDomain) {
        for bytes in [1, 5_000, 60_000] {
            let options = CorpusOptions(domain: domain, split: .train, seed: 3, bytes: bytes)
            let docs = Corpus.documents(options)
            let text = Corpus.generate(options)
            #expect(text.utf8.count >= bytes)
            #expect(text.utf8.count - docs.last!.utf8.count - 2 < bytes, "more documents than the budget needs")
            #expect(text.hasSuffix("\n") && !text.hasSuffix("\n\n"))
            #expect(Corpus.splitDocuments(text) == docs)
            for d in docs {
                #expect(!d.isEmpty && !d.contains("\n\n") && !d.hasPrefix("\n") && !d.hasSuffix("\n"))
            }
        }
        let text = Corpus.generate(domain, split: .heldout, seed: 4, bytes: 100_000)
        let bytes = Set(text.utf8)
        #expect(bytes.allSatisfy { $0 == 10 || (32...126).contains($0) }, "printable ASCII and newlines only")
        #expect(bytes.count <= 90, "\(bytes.count) distinct characters")
        #expect(Corpus.generate(CorpusOptions(domain: domain, bytes: 0)).isEmpty)
    }

    @Test("train and held-out share no document, whatever the seeds", arguments: CorpusDomain.allCases)
    func splitsDisjoint(domain: CorpusDomain) {
        let train = Set(CorpusFixtures.docs(domain, .train, seed: 1, bytes: 300_000))
        for seed: UInt64 in [1, 2] {
            let heldout = CorpusFixtures.docs(domain, .heldout, seed: seed, bytes: 100_000)
            let shared = heldout.filter { train.contains($0) }
            #expect(shared.isEmpty, "\(domain) seed \(seed): \(shared.count) shared, e.g. \(shared.first ?? "")")
        }
        if domain == .math || domain == .code {
            #expect(train.allSatisfy { CorpusSplit.of(document: $0) == .train })
        }
    }

    @Test("math: every equality in every solution is true", arguments: CorpusSplit.allCases)
    func mathCorrect(split: CorpusSplit) {
        var checked = 0
        var kinds = Set<String>()
        for doc in CorpusFixtures.docs(.math, split, seed: 5, bytes: 300_000) {
            let (n, failure) = checkMathDocument(doc)
            #expect(failure == nil, "\(failure ?? "")\n\(doc)")
            #expect(n > 0, "no equality to check in\n\(doc)")
            checked += n
            kinds.insert(String(doc.prefix(while: { $0 != " " })))
            if failure != nil { break }
        }
        #expect(checked > 5_000)
        // Equations, systems, column arithmetic, long division, fractions, order of operations...
        for kind in ["Solve", "Add", "Subtract", "Multiply", "Divide", "Evaluate", "Write", "Find"] {
            #expect(kinds.contains(kind), "no `\(kind)` problem")
        }
    }

    @Test("math checker rejects wrong arithmetic")
    func mathCheckerBites() {
        #expect(checkMathDocument("Solve for x: 3x + 7 = 22.\nAnswer: x = 5.").failure == nil)
        #expect(checkMathDocument("Solve for x: 3x + 7 = 22.\nAnswer: x = 6.").failure != nil)
        #expect(checkMathDocument("Multiply 47 * 36.\nAnswer: 47 * 36 = 1682.").failure != nil)
        #expect(checkMathDocument("Add 2/3 + 3/4.\n2/3 = 8/12, 3/4 = 9/12.\nAnswer: 2/3 + 3/4 = 17/12.").failure == nil)
        #expect(checkMathDocument("Check: 4(-2 + 3) = 4(1) = 5.\nAnswer: 4.").failure != nil)
        #expect(checkMathDocument("So 2 + 2 = 4.\nAnswer: 4.").failure != nil, "words inside an equality")
    }

    @Test("code: indentation, brackets, arity, and names defined before use", arguments: CorpusSplit.allCases)
    func codeStructure(split: CorpusSplit) {
        let docs = CorpusFixtures.docs(.code, split, seed: 6, bytes: 300_000)
        var functions = 0, classes = 0, docstrings = 0, lines = 0
        for doc in docs {
            let problems = PythonChecker.problems(doc)
            #expect(problems.isEmpty, "\(problems.joined(separator: "; "))\n\(doc)")
            if !problems.isEmpty { break }
            for line in doc.split(separator: "\n") {
                lines += 1
                if line.hasPrefix("def ") { functions += 1 }
                if line.hasPrefix("class ") { classes += 1 }
                if line.contains("\"\"\"") { docstrings += 1 }
            }
        }
        #expect(functions > docs.count && classes > docs.count / 10)
        #expect(docstrings * 20 < lines, "docstrings are meant to be sparse: \(docstrings) in \(lines) lines")
    }

    @Test("code checker catches undefined names and wrong arity")
    func codeCheckerBites() {
        #expect(PythonChecker.problems("def f(a, b):\n    c = a + b\n    return c\nprint(f(1, 2))").isEmpty)
        #expect(!PythonChecker.problems("def f(a):\n    return c\nprint(f(1))").isEmpty)
        #expect(!PythonChecker.problems("def f(a):\n    return a\nprint(f(1, 2))").isEmpty)
        #expect(!PythonChecker.problems("def f(a):\n  return a").isEmpty)
        #expect(PythonChecker.problems("def f(xs):\n    ys = [x * 2 for x in xs]\n    return ys").isEmpty)
    }

    @Test("knowledge: the world is consistent")
    func worldConsistent() {
        let w = KnowledgeWorld.standard
        #expect(w.people.count == 240 && w.cities.count >= 80 && w.companies.count >= 40)
        for p in w.people {
            #expect(p.born < p.died && w.cities[p.birthCity].founded < p.born, "\(p.name)")
            if let t = p.teacher.map({ w.people[$0] }) {
                #expect(t.profession == p.profession && t.born <= p.born - 15 && t.died >= p.born + 18, "\(p.name)")
            }
        }
        for c in w.companies {
            let f = w.people[c.founder]
            #expect(c.founded >= f.born + 22 && c.founded < f.died && w.cities[c.city].founded < c.founded, "\(c.name)")
        }
        for c in w.cities {
            if let r = c.river { #expect(w.rivers[r].countries.contains(c.country), "\(c.name) on \(w.rivers[r].name)") }
        }
        for (i, k) in w.countries.enumerated() { #expect(w.cities[k.capital].country == i) }
        let names = w.people.map(\.name) + w.people.map(\.surname) + w.cities.map(\.name) + w.rivers.map(\.name)
            + w.countries.map(\.name) + w.mountains.map(\.name) + w.companies.map(\.name) + w.seas + w.continents
        #expect(Set(names).count == names.count, "names are unique")
        #expect(Set(w.facts.map(\.key)).count == w.facts.count)
        var seen = Set<String>()
        for f in w.facts { for s in f.phrasings { #expect(seen.insert(s).inserted, "two facts say `\(s)`") } }
        for f in w.facts {
            #expect(f.phrasings.count >= 2 && Set(f.phrasings).count == f.phrasings.count, "\(f.key)")
            for s in f.phrasings { #expect(s.hasSuffix(".") && !s.dropLast().contains(". ") && !s.contains("\n"), "\(s)") }
        }
        #expect(KnowledgeWorld(seed: KnowledgeWorld.defaultSeed).facts.map(\.phrasings) == w.facts.map(\.phrasings))
    }

    @Test("knowledge: held-out restates training facts in other sentences, and facts agree across articles")
    func knowledgeSplitsAndConsistency() {
        let w = KnowledgeWorld.standard
        var factOf: [String: (fact: Int, phrasing: Int)] = [:]
        for (i, f) in w.facts.enumerated() { for (j, s) in f.phrasings.enumerated() { factOf[s] = (i, j) } }
        let train = CorpusFixtures.docs(.knowledge, .train, seed: 7, bytes: 600_000)
        let heldout = CorpusFixtures.docs(.knowledge, .heldout, seed: 8, bytes: 150_000)
        let trainSentences = train.flatMap(CorpusFixtures.sentences)
        let heldoutSentences = heldout.flatMap(CorpusFixtures.sentences)
        let trainSet = Set(trainSentences)
        #expect(heldoutSentences.allSatisfy { !trainSet.contains($0) }, "a held-out sentence occurs in train")
        var trainFacts = Set<Int>()
        for s in trainSentences {
            guard let (f, j) = factOf[s] else { Issue.record("not a phrasing of any fact: \(s)"); return }
            #expect(j != w.heldOutPhrasing(f))
            trainFacts.insert(f)
        }
        var heldoutFacts = Set<Int>()
        for s in heldoutSentences {
            guard let (f, j) = factOf[s] else { Issue.record("not a phrasing of any fact: \(s)"); return }
            #expect(j == w.heldOutPhrasing(f))
            heldoutFacts.insert(f)
        }
        let covered = heldoutFacts.filter { trainFacts.contains($0) }.count
        #expect(covered * 100 >= heldoutFacts.count * 95, "\(covered) of \(heldoutFacts.count) held-out facts are in train")

        // From the text alone: where and when people were born agrees across articles and with the
        // lists of natives in city articles.
        var birth: [String: (city: String, year: Int)] = [:]
        var leadYear: [String: Int] = [:]
        var natives: [(city: String, people: [String])] = []
        for s in trainSentences + heldoutSentences {
            if let r = s.range(of: " was born in "), !s.hasPrefix("The birthplace") {
                let subject = String(s[..<r.lowerBound])
                let rest = s[r.upperBound...].dropLast()
                let parsed: (String, Int)?
                if let cityOf = rest.range(of: " in the city of "), let y = Int(rest[..<cityOf.lowerBound]) {
                    parsed = (String(rest[cityOf.upperBound...]), y)
                } else if let inR = rest.range(of: " in ", options: .backwards), let y = Int(rest[inR.upperBound...]) {
                    parsed = (String(rest[..<inR.lowerBound]), y)
                } else {
                    parsed = nil
                }
                guard let (city, year) = parsed else { continue }
                if let known = birth[subject] {
                    #expect(known.city == city && known.year == year, "\(subject): \(known) vs \(city) \(year)")
                }
                birth[subject] = (city, year)
            }
            if let open = s.range(of: " ("), let dash = s[open.upperBound...].firstIndex(of: "-"),
               let born = Int(s[open.upperBound..<dash]), s.contains(") was a") {
                leadYear[String(s[..<open.lowerBound])] = born
            }
            if s.hasPrefix("People born in "), let inc = s.range(of: " include ") {
                let city = String(s[s.index(s.startIndex, offsetBy: 15)..<inc.lowerBound])
                let list = s[inc.upperBound...].dropLast().replacing(" and ", with: ", ")
                natives.append((city, list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }))
            }
        }
        #expect(birth.count > 150 && natives.count > 20)
        var crossChecked = 0
        for (name, year) in leadYear {
            if let b = birth[name] { #expect(b.year == year, "\(name)"); crossChecked += 1 }
        }
        for (city, people) in natives {
            for p in people { if let b = birth[p] { #expect(b.city == city, "\(p) born in \(b.city), listed for \(city)"); crossChecked += 1 } }
        }
        #expect(crossChecked > 200)
    }

    @Test("the domains differ clearly in character bigrams; the splits of one domain do not")
    func domainsDistinct() {
        func bigrams(_ s: String) -> [Int: Double] {
            let b = Array(s.utf8)
            var counts: [Int: Int] = [:]
            for i in 1..<b.count { counts[Int(b[i - 1]) << 8 | Int(b[i]), default: 0] += 1 }
            return counts.mapValues { Double($0) / Double(b.count - 1) }
        }
        func distance(_ p: [Int: Double], _ q: [Int: Double]) -> Double {  // total variation
            Set(p.keys).union(q.keys).reduce(0) { $0 + abs(p[$1, default: 0] - q[$1, default: 0]) } / 2
        }
        let train = CorpusDomain.allCases.map { bigrams(Corpus.generate($0, split: .train, seed: 9, bytes: 200_000)) }
        let heldout = CorpusDomain.allCases.map { bigrams(Corpus.generate($0, split: .heldout, seed: 9, bytes: 200_000)) }
        for (i, a) in CorpusDomain.allCases.enumerated() {
            #expect(distance(train[i], heldout[i]) < 0.08, "\(a): train and held-out differ")
            for (j, b) in CorpusDomain.allCases.enumerated() where j > i {
                #expect(distance(train[i], train[j]) > 0.3, "\(a) vs \(b): too similar")
            }
        }
    }

    @Test("general is 70% narrative and 10% of each domain, by bytes")
    func generalShares() {
        var bytes: [String: Int] = [:]
        var total = 0
        for doc in CorpusFixtures.docs(.general, .train, seed: 10, bytes: 400_000) {
            let kind: String
            let first = doc.prefix(while: { $0 != "\n" })
            if doc.contains("print(") { kind = "code" }
            else if doc.split(separator: "\n").last!.hasPrefix("Answer: ") { kind = "math" }
            else if !first.contains(".") && !first.contains(",") { kind = "knowledge" }
            else { kind = "narrative" }
            bytes[kind, default: 0] += doc.utf8.count + 2
            total += doc.utf8.count + 2
        }
        for (kind, share) in [("narrative", 70), ("math", 10), ("code", 10), ("knowledge", 10)] {
            let percent = Double(bytes[kind, default: 0]) * 100 / Double(total)
            #expect(abs(percent - Double(share)) < 1.5, "\(kind): \(percent)%")
        }
    }

    @Test("a corpus file can be written again in place (atomic replace)")
    func rewriteFile() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("math.txt")
        try writeFileAtomically(Data(Corpus.generate(.math, bytes: 1_000).utf8), to: url)
        let second = Corpus.generate(.math, seed: 2, bytes: 1_000)
        try writeFileAtomically(Data(second.utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["math.txt"])
    }
}
