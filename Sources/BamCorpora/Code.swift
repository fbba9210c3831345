/// The code domain: Python modules from a small typed grammar.
///
/// A module is a few functions, sometimes a small class, and a main block that calls them. Function
/// bodies are sequences of idioms a programmer would write (accumulator loops, filters,
/// comprehensions, searches, halving loops, string joins, counting dictionaries), each idiom
/// reading variables already in scope with the right type and defining a new one. So every name is
/// defined before it is used, every call has the arity of its definition, and types line up
/// (`len` of a list, `range` of an int). Integers passed to `range` come only from parameters, which
/// the main block fills with small literals, so the programs also run (tools/check_corpora.py runs
/// them). Indentation is four spaces; docstrings and comments are sparse, as in real code.
/// Documents have no empty lines (the corpus separator), so functions follow each other directly.
enum CodeModules {
    static func document(_ r: inout CorpusRandom) -> String {
        var module = ModuleBuilder()
        let functionCount = r.int(1...4)
        for _ in 0..<functionCount { module.addFunction(&r) }
        if r.chance(18) { module.addClass(&r) }
        module.addMain(&r)
        return module.lines.joined(separator: "\n")
    }
}

/// The types the grammar tracks. `list` is a list of ints; `dict` maps ints to counts.
enum PyType: Equatable { case int, list, str, dict }

struct PyVariable {
    var name: String
    var type: PyType
    /// Small enough to pass to `range` (parameters and fields filled from literals).
    var small: Bool = false
}

struct PyFunction {
    var name: String
    var params: [PyVariable]
    var returns: PyType?
}

/// Lines relative to the body being built.
struct PyBody {
    var lines: [String] = []
    mutating func add(_ level: Int, _ s: String) { lines.append(String(repeating: "    ", count: level) + s) }
}

/// Names of Python builtins the grammar calls; never used for variables.
let pythonReserved: Set<String> = [
    "sum", "max", "min", "len", "list", "str", "int", "dict", "sorted", "abs", "print", "range", "map", "filter",
    "id", "type", "all", "any", "input", "set", "zip", "enumerate", "self", "round", "format", "next", "iter",
]

/// List names with the name of one element.
let listNames: [(String, String)] = [
    ("values", "value"), ("items", "item"), ("numbers", "number"), ("scores", "score"), ("weights", "weight"),
    ("prices", "price"), ("sizes", "size"), ("readings", "reading"), ("samples", "sample"), ("data", "x"),
    ("xs", "x"), ("ages", "age"), ("heights", "height"), ("lengths", "length"), ("grades", "grade"),
    ("totals", "subtotal"), ("marks", "mark"), ("points", "point"), ("steps", "step"), ("costs", "cost"),
]
let intNames = ["n", "k", "limit", "step", "start", "factor", "threshold", "offset", "base", "low", "high",
                "width", "target", "size", "count", "bound", "shift", "scale", "minimum", "cap"]

func singular(of list: String) -> String {
    let bare = list.hasPrefix("self.") ? String(list.dropFirst(5)) : list
    for (plural, one) in listNames where plural == bare { return one }
    return "v"
}

struct ModuleBuilder {
    var lines: [String] = []
    var functions: [PyFunction] = []
    var moduleNames: Set<String> = []
    var classInfo: (name: String, field: String, limitField: String, methods: [PyFunction])? = nil

    // MARK: Functions

    mutating func addFunction(_ r: inout CorpusRandom) {
        var params: [PyVariable] = []
        var taken = pythonReserved.union(moduleNames)
        let listParams = r.weighted([10, 70, 20])  // 0, 1 or 2 lists
        for _ in 0..<listParams {
            let name = fresh(&r, listNames.map { $0.0 }, &taken)
            params.append(PyVariable(name: name, type: .list))
        }
        let intParams = listParams == 0 ? r.int(1...2) : r.weighted([35, 50, 15])
        for _ in 0..<intParams {
            let name = fresh(&r, intNames, &taken)
            params.append(PyVariable(name: name, type: .int, small: true))
        }
        r.shuffle(&params)
        // Without a list parameter only ints and strings can be computed.
        let returns: PyType = listParams == 0 ? [.int, .str][r.weighted([80, 20])]
            : [.int, .list, .str, .dict][r.weighted([55, 30, 10, 5])]
        var fb = FunctionBuilder(scope: params, taken: taken, callable: functions, level: 1)
        let (body, result, read) = fb.build(&r, returns: returns)
        params = params.filter { read.contains($0.name) }
        let name = uniqueName(result.hint)
        lines.append("def \(name)(\(params.map(\.name).joined(separator: ", "))):")
        if r.chance(18) { lines.append("    \"\"\"\(result.doc)\"\"\"") }
        lines += body.lines
        functions.append(PyFunction(name: name, params: params, returns: returns))
        moduleNames.insert(name)
    }

    mutating func uniqueName(_ hint: String) -> String {
        var name = hint
        var i = 2
        while moduleNames.contains(name) || pythonReserved.contains(name) { name = "\(hint)_\(i)"; i += 1 }
        return name
    }

    // MARK: A small class around one list field

    static let classes: [(String, String, String)] = [  // class, list field, int field
        ("ScoreBoard", "scores", "limit"), ("PriceList", "prices", "cap"), ("Inventory", "items", "capacity"),
        ("SensorLog", "readings", "threshold"), ("Gradebook", "grades", "passing"), ("Playlist", "lengths", "maximum"),
        ("WeightTracker", "weights", "goal"), ("Histogram", "samples", "bucket"), ("Ledger", "costs", "budget"),
    ]

    mutating func addClass(_ r: inout CorpusRandom) {
        let (className, field, limitField) = r.pick(Self.classes)
        let one = singular(of: field)
        lines.append("class \(className):")
        if r.chance(30) { lines.append("    \"\"\"Keep \(field) and answer questions about them.\"\"\"") }
        lines.append("    def __init__(self, \(limitField)):")
        lines.append("        self.\(field) = []")
        lines.append("        self.\(limitField) = \(limitField)")
        lines.append("    def add(self, \(one)):")
        if r.chance(50) {
            lines.append("        if \(one) > self.\(limitField):")
            lines.append("            \(one) = self.\(limitField)")
        }
        lines.append("        self.\(field).append(\(one))")
        var methods = [PyFunction(name: "add", params: [PyVariable(name: one, type: .int)], returns: nil)]
        // Method names must differ from the fields too: an instance attribute would shadow the method.
        var names: Set<String> = ["add", "__init__", field, limitField]
        for _ in 0..<r.int(1...3) {
            let scope = [PyVariable(name: "self.\(field)", type: .list),
                         PyVariable(name: "self.\(limitField)", type: .int, small: true)]
            let returns: PyType = [.int, .int, .list, .str][r.below(4)]
            var fb = FunctionBuilder(scope: scope, taken: pythonReserved.union(moduleNames).union([field, limitField]),
                                     callable: [], level: 2, isMethod: true)
            let (body, result, _) = fb.build(&r, returns: returns)
            var name = result.hint.replacing("_\(field)", with: "")
            if names.contains(name) { name += "_\(field)" }
            if names.contains(name) { continue }
            names.insert(name)
            lines.append("    def \(name)(self):")
            if r.chance(12) { lines.append("        \"\"\"\(result.doc)\"\"\"") }
            lines += body.lines
            methods.append(PyFunction(name: name, params: [], returns: returns))
        }
        classInfo = (className, field, limitField, methods)
        moduleNames.insert(className)
    }

    // MARK: Main block

    mutating func addMain(_ r: inout CorpusRandom) {
        let guarded = r.chance(75)
        let indent = guarded ? "    " : ""
        if guarded { lines.append("if __name__ == \"__main__\":") }
        var defined: [String] = []
        var taken = pythonReserved.union(moduleNames)
        func listLiteral(_ r: inout CorpusRandom) -> String {
            "[" + (0..<r.int(3...7)).map { _ in String(r.int(0...60)) }.joined(separator: ", ") + "]"
        }
        var callables = functions
        if r.chance(30) && functions.count > 1 { callables = r.sample(functions, r.int(1...functions.count)) }
        for f in callables {
            var args: [String] = []
            for p in f.params {
                switch p.type {
                case .list:
                    if defined.contains(p.name) {
                        args.append(p.name)
                    } else if !taken.contains(p.name) && r.chance(70) {
                        lines.append("\(indent)\(p.name) = \(listLiteral(&r))")
                        defined.append(p.name); taken.insert(p.name)
                        args.append(p.name)
                    } else {
                        args.append(listLiteral(&r))
                    }
                default:
                    args.append(String(r.int(1...20)))
                }
            }
            let call = "\(f.name)(\(args.joined(separator: ", ")))"
            if r.chance(25) && !taken.contains("result") {
                lines.append("\(indent)result = \(call)")
                lines.append("\(indent)print(\"\(f.name):\", result)")
            } else {
                lines.append("\(indent)print(\(call))")
            }
        }
        if let c = classInfo {
            // ScoreBoard -> score_board
            var object = ""
            for ch in c.name {
                if ch.isUppercase && !object.isEmpty { object += "_" }
                object += ch.lowercased()
            }
            lines.append("\(indent)\(object) = \(c.name)(\(r.int(10...60)))")
            for _ in 0..<r.int(2...5) { lines.append("\(indent)\(object).add(\(r.int(0...80)))") }
            for m in c.methods.dropFirst() { lines.append("\(indent)print(\(object).\(m.name)())") }
        }
        if callables.isEmpty && classInfo == nil { lines.append("\(indent)print(\"nothing to do\")") }
    }
}

/// Draws a name from `candidates` that is not taken yet (falls back to numbered names).
func fresh(_ r: inout CorpusRandom, _ candidates: [String], _ taken: inout Set<String>) -> String {
    var pool = candidates.filter { !taken.contains($0) }
    if pool.isEmpty {
        var i = 2
        while taken.contains("\(candidates[0])\(i)") { i += 1 }
        pool = ["\(candidates[0])\(i)"]
    }
    let name = r.pick(pool)
    taken.insert(name)
    return name
}

/// What an idiom made: the variable, a docstring and a function-name hint.
struct IdiomResult {
    var variable: PyVariable
    var doc: String
    var hint: String
}

/// Builds one function (or method) body from idioms.
///
/// Each idiom is a block of lines that defines variables and uses others. Inputs are drawn
/// preferably from variables the body defined and nothing has used yet, so idioms chain (filter,
/// then sum the filtered list, then compare the sum with a parameter). At the end, blocks whose
/// variables the returned value does not depend on are dropped: no dead code.
struct FunctionBuilder {
    struct Block {
        var lines: [String] = []
        var defines: [String] = []
        var uses: [String] = []
    }

    var scope: [PyVariable]
    var taken: Set<String>
    var callable: [PyFunction]
    var level: Int
    var isMethod = false
    var blocks: [Block] = []
    /// Variables defined by the body and not yet read by another idiom, newest last.
    var unused: [String] = []

    init(scope: [PyVariable], taken: Set<String>, callable: [PyFunction], level: Int, isMethod: Bool = false) {
        self.scope = scope
        self.taken = taken.union(scope.map(\.name))
        self.callable = callable
        self.level = level
        self.isMethod = isMethod
    }

    func of(_ t: PyType) -> [PyVariable] { scope.filter { $0.type == t } }

    /// The noun of a variable for names and docstrings: "self.scores" -> "scores", "how_many" -> "how many".
    static func noun(_ v: PyVariable) -> String { noun(v.name) }
    static func noun(_ name: String) -> String {
        (name.hasPrefix("self.") ? String(name.dropFirst(5)) : name).replacing("_", with: " ")
    }
    static func snake(_ words: String) -> String { words.replacing(" ", with: "_") }

    mutating func add(_ depth: Int, _ s: String) {
        blocks[blocks.count - 1].lines.append(String(repeating: "    ", count: level + depth - 1) + s)
    }

    /// An input of type `t` (and `small` for `range`), preferring the newest unused variable; recorded as used.
    mutating func input(_ r: inout CorpusRandom, _ t: PyType, small: Bool = false, excluding: String? = nil) -> PyVariable? {
        let candidates = scope.filter { $0.type == t && (!small || $0.small) && $0.name != excluding }
        if candidates.isEmpty { return nil }
        let fresh = candidates.filter { unused.contains($0.name) }
        let v = !fresh.isEmpty && r.chance(80) ? fresh.last! : r.pick(candidates)
        blocks[blocks.count - 1].uses.append(v.name)
        unused.removeAll { $0 == v.name }
        return v
    }

    /// The body, what it returns, and the names the kept blocks read (parameters nobody reads are
    /// dropped from the signature by the caller).
    mutating func build(_ r: inout CorpusRandom, returns: PyType) -> (PyBody, IdiomResult, Set<String>) {
        if let l = of(.list).first, r.chance(12) {
            blocks.append(Block())
            add(1, "if not \(l.name):")
            add(2, "return \(Self.empty(returns))")
            blocks[0].defines = ["(guard)"]
            blocks[0].uses = [l.name]
        }
        let guardBlocks = blocks.count
        // A few idioms, then (if the last one did not make the return type) idioms until one does.
        let target = r.int(2...5)
        var made = 0, attempts = 0
        var last: IdiomResult? = nil
        while attempts < 80 {
            attempts += 1
            if made >= target, let last, last.variable.type == returns { break }
            blocks.append(Block())
            let unusedBefore = unused
            if let m = idiom(&r, want: made >= target ? returns : nil) {
                made += 1
                last = m
            } else {  // the scope lacked something: forget the attempt
                blocks.removeLast()
                unused = unusedBefore
            }
        }
        let result: IdiomResult
        if let last, last.variable.type == returns {
            result = last
        } else {  // nothing in scope could make the type: a literal
            blocks.append(Block())
            let name = freshNumbered(["result", "answer", "outcome"])
            add(1, "\(name) = \(Self.empty(returns))")
            result = define(name, returns, doc: "Return an empty result.", hint: "empty_result")
        }
        // Keep the blocks the result depends on.
        var live: Set<String> = [result.variable.name]
        var keep = [Bool](repeating: false, count: blocks.count)
        for i in stride(from: blocks.count - 1, through: guardBlocks, by: -1)
        where blocks[i].defines.contains(where: { live.contains($0) }) {
            keep[i] = true
            live.formUnion(blocks[i].uses)
        }
        for i in 0..<guardBlocks { keep[i] = true; live.formUnion(blocks[i].uses) }
        var body = PyBody()
        for (i, b) in blocks.enumerated() where keep[i] { body.lines += b.lines }
        body.add(level, "return \(result.variable.name)")
        return (body, result, live)
    }

    static func empty(_ t: PyType) -> String {
        switch t {
        case .int: return "0"
        case .list: return "[]"
        case .str: return "\"\""
        case .dict: return "{}"
        }
    }

    /// The first untaken of `names` (numbered when all are taken), without randomness.
    mutating func freshNumbered(_ names: [String]) -> String {
        for n in names where !taken.contains(n) { taken.insert(n); return n }
        var i = 2
        while taken.contains("\(names[0])\(i)") { i += 1 }
        taken.insert("\(names[0])\(i)")
        return "\(names[0])\(i)"
    }

    mutating func comment(_ r: inout CorpusRandom, _ text: String) {
        if r.chance(9) { add(1, "# \(text)") }
    }

    /// A condition on the int `v`: (code, words for docstrings, words for names).
    mutating func condition(_ r: inout CorpusRandom, _ v: String) -> (String, String, String) {
        if r.chance(70), let n = input(&r, .int) {
            let noun = Self.noun(n)
            switch r.below(4) {
            case 0: return ("\(v) > \(n.name)", "above \(noun)", "above_\(Self.snake(noun))")
            case 1: return ("\(v) >= \(n.name)", "at least \(noun)", "at_least_\(Self.snake(noun))")
            case 2: return ("\(v) < \(n.name)", "below \(noun)", "below_\(Self.snake(noun))")
            default: return ("\(v) != \(n.name)", "different from \(noun)", "not_\(Self.snake(noun))")
            }
        }
        switch r.below(4) {
        case 0: return ("\(v) % 2 == 0", "even", "even")
        case 1: return ("\(v) % 2 == 1", "odd", "odd")
        case 2:
            let k = r.int(0...20)
            return ("\(v) > \(k)", "above \(k)", "large")
        default:
            let k = r.int(3...7)
            return ("\(v) % \(k) == 0", "divisible by \(k)", "multiples_of_\(k)")
        }
    }

    mutating func define(_ name: String, _ t: PyType, doc: String, hint: String) -> IdiomResult {
        let v = PyVariable(name: name, type: t)
        scope.append(v)
        unused.append(name)
        blocks[blocks.count - 1].defines.append(name)
        return IdiomResult(variable: v, doc: doc, hint: hint)
    }

    /// One idiom, or nil when the scope lacks what it needs. `want` restricts the produced type.
    mutating func idiom(_ r: inout CorpusRandom, want: PyType?) -> IdiomResult? {
        let kind = r.below(22)
        let produces: [PyType] = [.int, .int, .int, .list, .list, .list, .int, .int, .list, .int,
                                  .int, .int, .int, .int, .str, .str, .dict, .int, .int, .int, .str, .list]
        if let want, produces[kind] != want { return nil }
        switch kind {
        case 0:  // sum loop
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["total", "acc", "running", "subtotal", "amount"], &taken)
            let v = loopVariable(l)
            comment(&r, "add up the \(Self.noun(l))")
            add(1, "\(name) = 0")
            add(1, "for \(v) in \(l.name):")
            add(2, "\(name) += \(v)")
            return define(name, .int, doc: "Return the sum of the \(Self.noun(l)).", hint: "total_\(Self.snake(Self.noun(l)))")
        case 1:  // count loop
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["count", "hits", "matches", "found", "tally"], &taken)
            let v = loopVariable(l)
            let (cond, words, hint) = condition(&r, v)
            comment(&r, "count the \(Self.noun(l)) \(words)")
            add(1, "\(name) = 0")
            add(1, "for \(v) in \(l.name):")
            add(2, "if \(cond):")
            add(3, "\(name) += 1")
            return define(name, .int, doc: "Count the \(Self.noun(l)) that are \(words).", hint: "count_\(hint)")
        case 2:  // extreme by search
            guard let l = input(&r, .list) else { return nil }
            let smallest = r.chance(30)
            let name = fresh(&r, smallest ? ["smallest", "lowest", "least"] : ["best", "largest", "highest", "peak"], &taken)
            let v = loopVariable(l)
            add(1, "\(name) = \(l.name)[0] if \(l.name) else 0")
            add(1, "for \(v) in \(l.name):")
            add(2, "if \(v) \(smallest ? "<" : ">") \(name):")
            add(3, "\(name) = \(v)")
            return define(name, .int, doc: "Return the \(smallest ? "smallest" : "largest") of the \(Self.noun(l)).",
                          hint: "\(smallest ? "smallest" : "largest")_\(singular(of: l.name))")
        case 3:  // filter loop
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["kept", "selected", "result", "chosen", "matching"], &taken)
            let v = loopVariable(l)
            let (cond, words, hint) = condition(&r, v)
            comment(&r, "keep the \(Self.noun(l)) \(words)")
            add(1, "\(name) = []")
            add(1, "for \(v) in \(l.name):")
            add(2, "if \(cond):")
            add(3, "\(name).append(\(v))")
            return define(name, .list, doc: "Return the \(Self.noun(l)) that are \(words).", hint: "select_\(hint)")
        case 4:  // map comprehension
            guard let l = input(&r, .list) else { return nil }
            let v = loopVariable(l)
            let n = input(&r, .int)?.name ?? String(r.int(2...9))
            let (expression, names, verb): (String, [String], String) = [
                ("\(v) * \(n)", ["scaled", "multiplied", "stretched"], "scale"),
                ("\(v) + \(n)", ["shifted", "raised", "moved"], "shift"),
                ("abs(\(v) - \(n))", ["distances", "gaps", "deviations"], "distance"),
                ("\(v) * \(v)", ["squares", "squared"], "square"),
                ("min(\(v), \(n))", ["capped", "clipped", "limited"], "cap"),
            ][r.below(5)]
            let name = fresh(&r, names, &taken)
            add(1, "\(name) = [\(expression) for \(v) in \(l.name)]")
            return define(name, .list, doc: "Return the \(Self.noun(l)) after a \(verb).", hint: "\(verb)_\(Self.snake(Self.noun(l)))")
        case 5:  // filter comprehension
            guard let l = input(&r, .list) else { return nil }
            let v = loopVariable(l)
            let (cond, words, hint) = condition(&r, v)
            let name = fresh(&r, ["filtered", "picked", "subset", "survivors"], &taken)
            add(1, "\(name) = [\(v) for \(v) in \(l.name) if \(cond)]")
            return define(name, .list, doc: "Keep only the \(Self.noun(l)) that are \(words).", hint: "keep_\(hint)")
        case 6:  // arithmetic on two ints
            guard let a = input(&r, .int) else { return nil }
            let other = input(&r, .int, excluding: a.name)
            let b = other?.name ?? String(r.int(2...9))
            let (expression, names, what): (String, [String], String) = [
                ("(\(a.name) + \(b)) // 2", ["middle", "mid", "halfway"], "midpoint"),
                ("abs(\(a.name) - \(b))", ["gap", "difference", "spread"], "difference"),
                ("max(\(a.name), \(b))", ["larger", "upper", "bigger"], "larger"),
                ("min(\(a.name), \(b))", ["smaller", "lower"], "smaller"),
                ("\(a.name) * \(b) + 1", ["product", "area", "combined"], "product"),
                (other == nil ? "\(a.name) % \(b)" : "\(a.name) % \(b) if \(b) else 0", ["remainder", "leftover"], "remainder"),
            ][r.below(6)]
            let name = fresh(&r, names, &taken)
            add(1, "\(name) = \(expression)")
            return define(name, .int, doc: "Return the \(what) of \(Self.noun(a)) and \(Self.noun(b)).", hint: what)
        case 7:  // length
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["size", "length", "how_many", "n_items"], &taken)
            add(1, "\(name) = len(\(l.name))")
            return define(name, .int, doc: "Return how many \(Self.noun(l)) there are.", hint: "number_of_\(Self.snake(Self.noun(l)))")
        case 8:  // sorted
            guard let l = input(&r, .list) else { return nil }
            let descending = r.chance(35)
            let name = fresh(&r, descending ? ["descending", "ranked"] : ["ordered", "ascending", "in_order"], &taken)
            add(1, "\(name) = sorted(\(l.name)\(descending ? ", reverse=True" : ""))")
            return define(name, .list, doc: "Return the \(Self.noun(l)) in \(descending ? "descending" : "ascending") order.",
                          hint: "\(descending ? "rank" : "sort")_\(Self.snake(Self.noun(l)))")
        case 9:  // if / elif / else
            guard let a = input(&r, .int), let b = input(&r, .int, excluding: a.name) else { return nil }
            let name = fresh(&r, ["chosen", "outcome", "level", "distance"], &taken)
            add(1, "if \(a.name) > \(b.name):")
            add(2, "\(name) = \(a.name) - \(b.name)")
            add(1, "elif \(a.name) == \(b.name):")
            add(2, "\(name) = 0")
            add(1, "else:")
            add(2, "\(name) = \(b.name) - \(a.name)")
            return define(name, .int, doc: "Return how far apart \(Self.noun(a)) and \(Self.noun(b)) are.", hint: "distance")
        case 10:  // weighted sum over indices
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["weighted", "moment", "score_sum"], &taken)
            let i = fresh(&r, ["i", "index", "position"], &taken)
            add(1, "\(name) = 0")
            add(1, "for \(i) in range(len(\(l.name))):")
            add(2, "\(name) += \(l.name)[\(i)] * (\(i) + 1)")
            taken.remove(i)
            return define(name, .int, doc: "Return the \(Self.noun(l)) weighted by position.", hint: "weighted_\(Self.snake(Self.noun(l)))")
        case 11:  // halving loop
            guard let n = input(&r, .int) else { return nil }
            let steps = fresh(&r, ["steps", "rounds", "halvings"], &taken)
            let m = fresh(&r, ["m", "rest", "current"], &taken)
            add(1, "\(steps) = 0")
            add(1, "\(m) = \(n.name)")
            add(1, "while \(m) > 1:")
            add(2, "\(m) = \(m) // 2")
            add(2, "\(steps) += 1")
            return define(steps, .int, doc: "Count how often \(Self.noun(n)) can be halved.", hint: "halving_steps")
        case 12:  // sum of squares over a small range
            guard let n = input(&r, .int, small: true) else { return nil }
            let name = fresh(&r, ["acc", "series", "squares_sum"], &taken)
            let i = fresh(&r, ["i", "j"], &taken)
            add(1, "\(name) = 0")
            add(1, "for \(i) in range(1, \(n.name) + 1):")
            add(2, "\(name) += \(i) * \(i)")
            taken.remove(i)
            return define(name, .int, doc: "Return the sum of the squares up to \(Self.noun(n)).", hint: "sum_of_squares")
        case 13:  // call an earlier function
            let candidates = callable.filter { $0.returns != nil }
            guard !candidates.isEmpty else { return nil }
            let f = r.pick(candidates)
            var args: [String] = []
            for p in f.params {
                switch p.type {
                case .list: args.append(input(&r, .list)?.name ?? "[1, 2, 3]")
                default: args.append(input(&r, .int, small: true)?.name ?? String(r.int(1...9)))
                }
            }
            let name = fresh(&r, ["partial", "inner", "first", "base_value", "part"], &taken)
            add(1, "\(name) = \(f.name)(\(args.joined(separator: ", ")))")
            return define(name, f.returns!, doc: "Build on \(f.name).", hint: "apply_\(f.name)")
        case 14:  // join into a string
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["text", "line", "report", "joined"], &taken)
            let v = loopVariable(l)
            if r.chance(50) {
                let parts = fresh(&r, ["parts", "pieces", "words"], &taken)
                add(1, "\(parts) = []")
                add(1, "for \(v) in \(l.name):")
                add(2, "\(parts).append(str(\(v)))")
                add(1, "\(name) = \"\(r.pick([", ", " ", "-", "; "]))\".join(\(parts))")
            } else {
                add(1, "\(name) = \"\(r.pick([", ", " ", "/"]))\".join(str(\(v)) for \(v) in \(l.name))")
            }
            return define(name, .str, doc: "Return the \(Self.noun(l)) as one line of text.", hint: "format_\(Self.snake(Self.noun(l)))")
        case 15:  // label from an int
            guard let n = input(&r, .int) else { return nil }
            let name = fresh(&r, ["label", "message", "summary"], &taken)
            if r.chance(50) {
                add(1, "\(name) = \"\(Self.noun(n)): \" + str(\(n.name))")
            } else {
                let cut = r.int(0...30)
                add(1, "\(name) = \"\(r.pick(["high", "big", "many"]))\" if \(n.name) > \(cut) else \"\(r.pick(["low", "small", "few"]))\"")
            }
            return define(name, .str, doc: "Describe the \(Self.noun(n)) in words.", hint: "describe_\(Self.snake(Self.noun(n)))")
        case 16:  // counting dictionary
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["counts", "frequency", "seen", "table"], &taken)
            let v = loopVariable(l)
            add(1, "\(name) = {}")
            add(1, "for \(v) in \(l.name):")
            add(2, "\(name)[\(v)] = \(name).get(\(v), 0) + 1")
            return define(name, .dict, doc: "Count how often each of the \(Self.noun(l)) occurs.", hint: "tally_\(Self.snake(Self.noun(l)))")
        case 17:  // distinct count from a dictionary
            guard let d = input(&r, .dict) else { return nil }
            let name = fresh(&r, ["distinct", "unique", "kinds"], &taken)
            add(1, "\(name) = len(\(d.name))")
            return define(name, .int, doc: "Return how many different keys the \(Self.noun(d)) has.", hint: "count_distinct")
        case 18:  // average
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["average", "mean", "typical"], &taken)
            add(1, "\(name) = sum(\(l.name)) // len(\(l.name)) if \(l.name) else 0")
            return define(name, .int, doc: "Return the average of the \(Self.noun(l)), rounded down.", hint: "average_\(singular(of: l.name))")
        case 19:  // dot product of two lists
            guard let a = input(&r, .list), let b = input(&r, .list, excluding: a.name) else { return nil }
            var va = loopVariable(a), vb = loopVariable(b)
            if va == vb { va = "a"; vb = "b" }
            if taken.contains(va) || taken.contains(vb) || va == vb { return nil }
            let name = fresh(&r, ["dot", "paired", "cross"], &taken)
            add(1, "\(name) = 0")
            add(1, "for \(va), \(vb) in zip(\(a.name), \(b.name)):")
            add(2, "\(name) += \(va) * \(vb)")
            return define(name, .int, doc: "Return the sum of the products of \(Self.noun(a)) and \(Self.noun(b)).", hint: "dot_product")
        case 20:  // position of the largest
            guard let l = input(&r, .list) else { return nil }
            let v = loopVariable(l)
            let index = fresh(&r, ["best_index", "where", "position"], &taken)
            let i = fresh(&r, ["i", "idx"], &taken)
            add(1, "\(index) = 0")
            add(1, "for \(i), \(v) in enumerate(\(l.name)):")
            add(2, "if \(v) > \(l.name)[\(index)]:")
            add(3, "\(index) = \(i)")
            taken.remove(i)
            let s = fresh(&r, ["where_text", "position_text", "located"], &taken)
            add(1, "\(s) = \"at \" + str(\(index))")
            return define(s, .str, doc: "Say where the largest of the \(Self.noun(l)) is.", hint: "locate_largest")
        default:  // running prefix sums
            guard let l = input(&r, .list) else { return nil }
            let name = fresh(&r, ["prefix", "running_totals", "cumulative"], &taken)
            let acc = fresh(&r, ["so_far", "carry", "acc"], &taken)
            let v = loopVariable(l)
            add(1, "\(name) = []")
            add(1, "\(acc) = 0")
            add(1, "for \(v) in \(l.name):")
            add(2, "\(acc) += \(v)")
            add(2, "\(name).append(\(acc))")
            return define(name, .list, doc: "Return the running totals of the \(Self.noun(l)).", hint: "running_\(Self.snake(Self.noun(l)))")
        }
    }

    /// The element name for a loop over `l` that does not shadow anything in scope.
    mutating func loopVariable(_ l: PyVariable) -> String {
        for candidate in [singular(of: l.name), "v", "x", "item", "entry"] where !taken.contains(candidate) {
            return candidate
        }
        return "element"
    }
}
