/// The math domain: worked solutions in the style of a school exercise book.
///
/// Every problem is built backwards from its answer (pick x, then the coefficients; pick the
/// quotient, then the dividend), so each equality a solution states is true. The text obeys one
/// convention that lets `CorpusTests` recompute all of it: an "=" only appears inside a chunk that
/// is pure arithmetic (digits, one-letter variables, + - * / and parentheses), where chunks are the
/// pieces of a line between ": ", ", " and ". "; the "Answer:" line gives the variables' values.
enum MathProblems {
    static func document(_ r: inout CorpusRandom) -> String {
        // Weights in percent of documents.
        switch r.weighted([9, 6, 5, 3, 6, 8, 6, 8, 5, 7, 4, 8, 4, 4, 2, 15]) {
        case 0: return linearEquation(&r)
        case 1: return twoSidedEquation(&r)
        case 2: return bracketEquation(&r)
        case 3: return quotientEquation(&r)
        case 4: return system(&r)
        case 5: return columnAddition(&r)
        case 6: return columnSubtraction(&r)
        case 7: return longMultiplication(&r)
        case 8: return longDivision(&r)
        case 9: return fractionSum(&r)
        case 10: return fractionProduct(&r)
        case 11: return orderOfOperations(&r)
        case 12: return factorisation(&r)
        case 13: return greatestCommonDivisor(&r)
        case 14: return percentage(&r)
        default: return wordProblem(&r)
        }
    }

    // MARK: Formatting

    /// "3x - 7", "-x + 2y", "12": terms (coefficient, variable; "" for a constant), zeros left out.
    static func linear(_ terms: [(Int, String)]) -> String {
        var s = ""
        for (c, v) in terms where c != 0 {
            let magnitude = abs(c) == 1 && !v.isEmpty ? v : String(abs(c)) + v
            if s.isEmpty {
                s = (c < 0 ? "-" : "") + magnitude
            } else {
                s += (c < 0 ? " - " : " + ") + magnitude
            }
        }
        return s.isEmpty ? "0" : s
    }

    /// "15 + 7", "-12 - 7": a sum of signed numbers written as a schoolbook would.
    static func signedSum(_ xs: [Int]) -> String {
        var s = String(xs[0])
        for x in xs.dropFirst() { s += (x < 0 ? " - " : " + ") + String(abs(x)) }
        return s
    }

    /// The linear expression with the variables in `value` substituted: "3(5) + 7", "(-4) - 2",
    /// "-(3) + 2y" (variables without a value stay).
    static func substituted(_ terms: [(Int, String)], _ value: [String: Int]) -> String {
        var s = ""
        for (c, v) in terms where c != 0 {
            let body: String
            if v.isEmpty {
                body = String(abs(c))
            } else if let x = value[v] {
                body = (abs(c) == 1 ? "" : String(abs(c))) + "(" + String(x) + ")"
            } else {
                body = abs(c) == 1 ? v : String(abs(c)) + v
            }
            if s.isEmpty { s = (c < 0 ? "-" : "") + body } else { s += (c < 0 ? " - " : " + ") + body }
        }
        return s.isEmpty ? "0" : s
    }

    /// The step that removes the constant `b` from the side holding the variable.
    static func removeConstant(_ b: Int) -> String {
        b > 0 ? "Subtract \(b) from both sides" : "Add \(-b) to both sides"
    }

    static let variables = ["x", "x", "x", "x", "y", "n", "t", "k", "m", "a", "p"]

    // MARK: Equations

    /// The steps from `a v + b = c` to `v = x`, appended to `lines`.
    static func finishLinear(_ a: Int, _ v: String, _ b: Int, _ c: Int, into lines: inout [String]) {
        if b != 0 { lines.append("\(removeConstant(b)): \(linear([(a, v)])) = \(c - b).") }
        if a != 1 { lines.append("Divide both sides by \(a): \(v) = \((c - b) / a).") }
    }

    /// a v + b = c
    static func linearEquation(_ r: inout CorpusRandom) -> String {
        let v = r.pick(variables)
        var a = r.chance(15) ? 1 : r.int(2...12)
        if r.chance(15) { a = -a }
        var b = r.int(1...60)
        if r.chance(35) { b = -b }
        let x = r.chance(20) ? -r.int(1...12) : r.int(0...25)
        let c = a * x + b
        let terms = [(a, v), (b, "")]
        var lines = ["Solve for \(v): \(linear(terms)) = \(c)."]
        finishLinear(a, v, b, c, into: &lines)
        lines.append("Check: \(substituted(terms, [v: x])) = \(signedSum([a * x, b])) = \(c).")
        lines.append("Answer: \(v) = \(x).")
        return lines.joined(separator: "\n")
    }

    /// a v + b = c v + d with a > c > 0
    static func twoSidedEquation(_ r: inout CorpusRandom) -> String {
        let v = r.pick(variables)
        let c = r.int(1...8)
        let a = c + r.int(1...7)
        var b = r.int(1...40)
        if r.chance(35) { b = -b }
        let x = r.chance(15) ? -r.int(1...9) : r.int(0...20)
        let d = a * x + b - c * x
        let left = [(a, v), (b, "")], right = [(c, v), (d, "")]
        var lines = ["Solve for \(v): \(linear(left)) = \(linear(right))."]
        lines.append("Subtract \(linear([(c, v)])) from both sides: \(linear([(a - c, v), (b, "")])) = \(d).")
        finishLinear(a - c, v, b, d, into: &lines)
        lines.append("Check: \(substituted(left, [v: x])) = \(a * x + b), \(substituted(right, [v: x])) = \(c * x + d).")
        lines.append("Answer: \(v) = \(x).")
        return lines.joined(separator: "\n")
    }

    /// a(v + b) = c
    static func bracketEquation(_ r: inout CorpusRandom) -> String {
        let v = r.pick(variables)
        let a = r.int(2...9)
        var b = r.int(1...15)
        if r.chance(45) { b = -b }
        let x = r.chance(15) ? -r.int(1...9) : r.int(0...20)
        let c = a * (x + b)
        var lines = ["Solve for \(v): \(a)(\(linear([(1, v), (b, "")]))) = \(c)."]
        lines.append("Expand the left side: \(linear([(a, v), (a * b, "")])) = \(c).")
        finishLinear(a, v, a * b, c, into: &lines)
        lines.append("Check: \(a)(\(signedSum([x, b]))) = \(a)(\(x + b)) = \(c).")
        lines.append("Answer: \(v) = \(x).")
        return lines.joined(separator: "\n")
    }

    /// v/a + b = c
    static func quotientEquation(_ r: inout CorpusRandom) -> String {
        let v = r.pick(variables)
        let a = r.int(2...9)
        var b = r.int(1...30)
        if r.chance(35) { b = -b }
        let q = r.chance(15) ? -r.int(1...6) : r.int(1...15)
        let x = a * q
        let c = q + b
        var lines = ["Solve for \(v): \(v)/\(a) \(b < 0 ? "-" : "+") \(abs(b)) = \(c)."]
        lines.append("\(removeConstant(b)): \(v)/\(a) = \(q).")
        lines.append("Multiply both sides by \(a): \(v) = \(x).")
        lines.append("Check: \(x)/\(a) \(b < 0 ? "-" : "+") \(abs(b)) = \(signedSum([q, b])) = \(c).")
        lines.append("Answer: \(v) = \(x).")
        return lines.joined(separator: "\n")
    }

    /// Two equations in x and y, solved by elimination of y.
    static func system(_ r: inout CorpusRandom) -> String {
        func coefficient(_ r: inout CorpusRandom) -> Int { (r.chance(25) ? -1 : 1) * r.int(1...6) }
        var a1 = 0, b1 = 0, a2 = 0, b2 = 0
        repeat {
            a1 = coefficient(&r); b1 = coefficient(&r); a2 = coefficient(&r); b2 = coefficient(&r)
        } while a1 * b2 - a2 * b1 == 0
        let x = r.int(-6...12), y = r.int(-6...12)
        let c1 = a1 * x + b1 * y, c2 = a2 * x + b2 * y
        let eq1 = [(a1, "x"), (b1, "y")], eq2 = [(a2, "x"), (b2, "y")]
        var lines = ["Solve for x and y: \(linear(eq1)) = \(c1), \(linear(eq2)) = \(c2)."]
        let l = lcm(abs(b1), abs(b2))
        let m1 = l / abs(b1), m2 = l / abs(b2)
        if m1 != 1 {
            lines.append("Multiply the first equation by \(m1): \(linear([(a1 * m1, "x"), (b1 * m1, "y")])) = \(c1 * m1).")
        }
        if m2 != 1 {
            lines.append("Multiply the second equation by \(m2): \(linear([(a2 * m2, "x"), (b2 * m2, "y")])) = \(c2 * m2).")
        }
        let d: Int, e: Int
        if (b1 > 0) == (b2 > 0) {
            d = a1 * m1 - a2 * m2; e = c1 * m1 - c2 * m2
            lines.append("Subtract the second equation from the first: \(linear([(d, "x")])) = \(e).")
        } else {
            d = a1 * m1 + a2 * m2; e = c1 * m1 + c2 * m2
            lines.append("Add the two equations: \(linear([(d, "x")])) = \(e).")
        }
        if d != 1 { lines.append("Divide both sides by \(d): x = \(x).") }
        lines.append("Substitute into the first equation: \(substituted(eq1, ["x": x])) = \(c1).")
        let k = a1 * x
        lines.append("Simplify: \(linear([(k, ""), (b1, "y")])) = \(c1).")
        finishLinear(b1, "y", k, c1, into: &lines)
        lines.append("Answer: x = \(x), y = \(y).")
        return lines.joined(separator: "\n")
    }

    // MARK: Column arithmetic

    static let places = ["Ones", "Tens", "Hundreds", "Thousands", "Ten thousands", "Hundred thousands", "Millions"]

    static func digits(_ n: Int) -> [Int] {  // least significant first
        var d: [Int] = []
        var m = n
        repeat { d.append(m % 10); m /= 10 } while m > 0
        return d
    }

    static func number(_ r: inout CorpusRandom, digits k: Int) -> Int {
        var p = 1
        for _ in 1..<k { p *= 10 }
        return r.int(p...(p * 10 - 1))
    }

    static func columnAddition(_ r: inout CorpusRandom) -> String {
        let a = number(&r, digits: r.int(2...5)), b = number(&r, digits: r.int(2...5))
        let da = digits(a), db = digits(b)
        var lines = ["Add \(a) + \(b) in columns."]
        var carry = 0
        for i in 0..<max(da.count, db.count) {
            var parts: [Int] = []
            if i < da.count { parts.append(da[i]) }
            if i < db.count { parts.append(db[i]) }
            if carry > 0 { parts.append(carry) }
            let s = parts.reduce(0, +)
            let write = s % 10
            carry = s / 10
            if parts.count == 1 {
                lines.append("\(places[i]): bring down \(s).")
            } else if carry > 0 {
                lines.append("\(places[i]): \(parts.map(String.init).joined(separator: " + ")) = \(s). Write \(write), carry \(carry).")
            } else {
                lines.append("\(places[i]): \(parts.map(String.init).joined(separator: " + ")) = \(s). Write \(write).")
            }
        }
        if carry > 0 { lines.append("\(places[max(da.count, db.count)]): write the carry \(carry).") }
        lines.append("Answer: \(a) + \(b) = \(a + b).")
        return lines.joined(separator: "\n")
    }

    static func columnSubtraction(_ r: inout CorpusRandom) -> String {
        var a = number(&r, digits: r.int(3...5)), b = number(&r, digits: r.int(2...5))
        if a < b { swap(&a, &b) }
        if a == b { a += r.int(1...99) }
        let da = digits(a), db = digits(b)
        var lines = ["Subtract \(a) - \(b) in columns."]
        var borrow = 0
        for i in 0..<da.count {
            let bottom = i < db.count ? db[i] : 0
            var top = da[i]
            var line = "\(places[i]): "
            if borrow > 0 {
                line += "take away the borrow: \(top) - 1 = \(top - 1). "
                top -= 1
            } else if i >= db.count {
                // Nothing below and nothing borrowed: the digit goes straight into the answer.
                lines.append("\(places[i]): bring down \(top).")
                continue
            }
            if top < bottom {
                line += "\(top) is less than \(bottom), so borrow ten: \(top + 10) - \(bottom) = \(top + 10 - bottom)."
                borrow = 1
            } else {
                line += "\(top) - \(bottom) = \(top - bottom)."
                borrow = 0
            }
            lines.append(line)
        }
        lines.append("Answer: \(a) - \(b) = \(a - b).")
        return lines.joined(separator: "\n")
    }

    static func longMultiplication(_ r: inout CorpusRandom) -> String {
        let a = number(&r, digits: r.int(2...4)), b = number(&r, digits: r.int(2...3))
        var lines = ["Multiply \(a) * \(b)."]
        var partials: [Int] = []
        var place = 1
        for d in digits(b) {
            if d != 0 {
                lines.append("\(a) * \(d * place) = \(a * d * place).")
                partials.append(a * d * place)
            }
            place *= 10
        }
        if partials.count > 1 {
            lines.append("\(partials.map(String.init).joined(separator: " + ")) = \(a * b).")
        }
        lines.append("Answer: \(a) * \(b) = \(a * b).")
        return lines.joined(separator: "\n")
    }

    static func longDivision(_ r: inout CorpusRandom) -> String {
        let d = r.int(2...19)
        let n = number(&r, digits: r.int(3...5))
        var lines = ["Divide \(n) by \(d)."]
        let ds = Array(digits(n).reversed())
        // Take leading digits until the part is at least d (or all digits are used).
        var i = 0, part = 0
        while i < ds.count && (part < d || i == 0) {
            part = part * 10 + ds[i]; i += 1
            if part >= d { break }
        }
        var first = true
        while true {
            let q = part / d
            let rem = part - q * d
            if first {
                lines.append("\(part) / \(d): \(d) * \(q) = \(d * q), \(part) - \(d * q) = \(rem).")
                first = false
            } else {
                lines.append("Bring down \(ds[i - 1]): \(part). \(d) * \(q) = \(d * q), \(part) - \(d * q) = \(rem).")
            }
            if i >= ds.count { break }
            part = rem * 10 + ds[i]; i += 1
        }
        let q = n / d, rem = n % d
        if rem == 0 {
            lines.append("Answer: \(n) / \(d) = \(q), with no remainder.")
        } else {
            lines.append("Answer: \(n) = \(d) * \(q) + \(rem), so the quotient is \(q) and the remainder is \(rem).")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Fractions

    static func fraction(_ n: Int, _ d: Int) -> String { d == 1 ? String(n) : "\(n)/\(d)" }

    /// "Divide the top and bottom by g: 18/30 = 3/5." when the fraction reduces.
    static func simplify(_ n: Int, _ d: Int, into lines: inout [String]) -> (Int, Int) {
        let g = gcd(n, d)
        if g > 1 { lines.append("Divide the top and bottom by \(g): \(n)/\(d) = \(fraction(n / g, d / g)).") }
        return (n / g, d / g)
    }

    static func properFraction(_ r: inout CorpusRandom) -> (Int, Int) {
        let d = r.int(2...12)
        return (r.int(1...(d - 1 + (r.chance(15) ? d : 0))), d)
    }

    static func fractionSum(_ r: inout CorpusRandom) -> String {
        var (a, b) = properFraction(&r), (c, d) = properFraction(&r)
        let subtract = r.chance(40)
        if subtract && a * d < c * b { swap(&a, &c); swap(&b, &d) }
        if subtract && a * d == c * b { return fractionProduct(&r) }
        let op = subtract ? "-" : "+"
        var lines = ["\(subtract ? "Subtract" : "Add") \(a)/\(b) \(op) \(c)/\(d)."]
        let l = lcm(b, d)
        if b != d {
            lines.append("The least common denominator of \(b) and \(d) is \(l).")
            var conversions: [String] = []
            if l != b { conversions.append("\(a)/\(b) = \(a * (l / b))/\(l)") }
            if l != d { conversions.append("\(c)/\(d) = \(c * (l / d))/\(l)") }
            lines.append(conversions.joined(separator: ", ") + ".")
        }
        let n = subtract ? a * (l / b) - c * (l / d) : a * (l / b) + c * (l / d)
        lines.append("\(a * (l / b))/\(l) \(op) \(c * (l / d))/\(l) = \(n)/\(l).")
        let (p, q) = simplify(n, l, into: &lines)
        lines.append("Answer: \(a)/\(b) \(op) \(c)/\(d) = \(fraction(p, q)).")
        return lines.joined(separator: "\n")
    }

    static func fractionProduct(_ r: inout CorpusRandom) -> String {
        let (a, b) = properFraction(&r), (c, d) = properFraction(&r)
        var lines: [String]
        let n: Int, m: Int, statement: String
        if r.chance(65) {
            statement = "\(a)/\(b) * \(c)/\(d)"
            lines = ["Multiply \(statement)."]
            n = a * c; m = b * d
        } else {
            statement = "\(a)/\(b) / (\(c)/\(d))"
            lines = ["Divide \(a)/\(b) by \(c)/\(d).", "Multiply by the reciprocal \(d)/\(c)."]
            n = a * d; m = b * c
            lines.append("Multiply the numerators: \(a) * \(d) = \(n).")
            lines.append("Multiply the denominators: \(b) * \(c) = \(m).")
            let (p, q) = simplify(n, m, into: &lines)
            lines.append("Answer: \(statement) = \(fraction(p, q)).")
            return lines.joined(separator: "\n")
        }
        lines.append("Multiply the numerators: \(a) * \(c) = \(n).")
        lines.append("Multiply the denominators: \(b) * \(d) = \(m).")
        let (p, q) = simplify(n, m, into: &lines)
        lines.append("Answer: \(statement) = \(fraction(p, q)).")
        return lines.joined(separator: "\n")
    }

    // MARK: Order of operations

    enum Token: Equatable { case number(Int), op(Character), open, close }

    static func render(_ ts: [Token]) -> String {
        var s = ""
        var previous: Token? = nil
        for t in ts {
            switch t {
            case .number(let n):
                if previous != nil && previous != .open { s += " " }
                s += String(n)
            case .op(let c): s += " " + String(c)
            case .open:
                if previous != nil && previous != .open { s += " " }
                s += "("
            case .close: s += ")"
            }
            previous = t
        }
        return s
    }

    static func orderOfOperations(_ r: inout CorpusRandom) -> String {
        while true {
            let count = r.int(3...5)
            var ts: [Token] = [.number(r.int(1...20))]
            for _ in 1..<count {
                ts.append(.op(["+", "-", "*", "*", "+", "-", "/"][r.below(7)]))
                ts.append(.number(r.int(1...12)))
            }
            if r.chance(70) {  // one pair of parentheses around 2..count-1 numbers
                let width = r.int(2...(count - 1))
                let start = r.int(0...(count - width))
                ts.insert(.close, at: 2 * (start + width) - 1)
                ts.insert(.open, at: 2 * start)
            }
            if let doc = solveStepByStep(ts) { return doc }
        }
    }

    /// The step-by-step evaluation, or nil when a step would divide inexactly, go negative or grow large.
    static func solveStepByStep(_ start: [Token]) -> String? {
        var ts = start
        var lines = ["Evaluate \(render(ts))."]
        while ts.count > 1 {
            // The innermost parenthesised group, else the whole expression.
            var lo = 0, hi = ts.count, inParens = false
            if let close = ts.firstIndex(of: .close) {
                let open = ts[..<close].lastIndex(of: .open)!
                lo = open + 1; hi = close; inParens = true
            }
            let segment = ts[lo..<hi]
            let opIndex = segment.firstIndex(where: { $0 == .op("*") || $0 == .op("/") })
                ?? segment.firstIndex(where: { $0 == .op("+") || $0 == .op("-") })!
            guard case .number(let x) = ts[opIndex - 1], case .op(let op) = ts[opIndex],
                  case .number(let y) = ts[opIndex + 1] else { return nil }
            let value: Int, verb: String
            switch op {
            case "+": value = x + y; verb = "add"
            case "-": value = x - y; verb = "subtract"
            case "*": value = x * y; verb = "multiply"
            default:
                guard y != 0, x % y == 0 else { return nil }
                value = x / y; verb = "divide"
            }
            guard value >= 0, value <= 5000 else { return nil }
            ts.replaceSubrange((opIndex - 1)...(opIndex + 1), with: [.number(value)])
            if inParens && hi - lo == 3 { ts.replaceSubrange((lo - 1)...(lo + 1), with: [ts[lo]]) }
            let label = inParens ? "Parentheses first, \(verb)" : verb.prefix(1).uppercased() + verb.dropFirst()
            if ts.count > 1 {
                lines.append("\(label): \(x) \(op) \(y) = \(value), so \(render(ts)).")
            } else {
                lines.append("\(label): \(x) \(op) \(y) = \(value).")
            }
        }
        guard case .number(let result) = ts[0] else { return nil }
        lines.append("Answer: \(render(start)) = \(result).")
        return lines.joined(separator: "\n")
    }

    // MARK: Number theory

    static func factorisation(_ r: inout CorpusRandom) -> String {
        let primes = [2, 2, 2, 3, 3, 5, 7, 11, 13]
        var n = 1
        var factors: [Int] = []
        for _ in 0..<r.int(3...6) {
            let p = r.pick(primes)
            if n * p > 6000 { break }
            n *= p; factors.append(p)
        }
        if factors.count < 2 { n *= 2; factors.append(2) }
        factors.sort()
        var lines = ["Write \(n) as a product of primes."]
        var m = n
        for p in factors.dropLast() {
            lines.append("\(m) = \(p) * \(m / p).")
            m /= p
        }
        lines.append("\(m) is prime.")
        lines.append("Answer: \(n) = \(factors.map(String.init).joined(separator: " * ")).")
        return lines.joined(separator: "\n")
    }

    static func greatestCommonDivisor(_ r: inout CorpusRandom) -> String {
        let g = r.int(1...15)
        var p = r.int(2...30), q = r.int(1...29)
        if p == q { p += 1 }
        if p < q { swap(&p, &q) }
        let a = g * p, b = g * q
        var lines = ["Find the greatest common divisor of \(a) and \(b)."]
        var x = a, y = b
        while y != 0 {
            lines.append("\(x) = \(x / y) * \(y) + \(x % y).")
            (x, y) = (y, x % y)
        }
        lines.append("The last nonzero remainder is \(x).")
        lines.append("Least common multiple: \(a) * \(b) / \(x) = \(a * b / x).")
        lines.append("Answer: the greatest common divisor is \(x).")
        return lines.joined(separator: "\n")
    }

    static func percentage(_ r: inout CorpusRandom) -> String {
        let pct = r.pick([5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80])
        var base = 20 * r.int(1...40)
        while base * pct % 100 != 0 { base += 20 }
        let part = base * pct / 100
        return ["Find \(pct)% of \(base).", "\(base) * \(pct) / 100 = \(part).", "Answer: \(part)."]
            .joined(separator: "\n")
    }

    // MARK: Word problems

    static let people: [(String, String, String)] = [  // name, subject pronoun, possessive
        ("Lena", "she", "her"), ("Omar", "he", "his"), ("Mia", "she", "her"), ("Ravi", "he", "his"),
        ("Sofia", "she", "her"), ("Jonas", "he", "his"), ("Aisha", "she", "her"), ("Tom", "he", "his"),
        ("Nora", "she", "her"), ("Felix", "he", "his"), ("Ines", "she", "her"), ("Sam", "he", "his"),
    ]
    static let things: [(String, String)] = [
        ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("pencil", "pencils"),
        ("card", "cards"), ("shell", "shells"), ("stamp", "stamps"), ("cookie", "cookies"), ("coin", "coins"),
    ]
    static let goods: [(String, String)] = [
        ("notebook", "notebooks"), ("pen", "pens"), ("ticket", "tickets"), ("sandwich", "sandwiches"),
        ("cup of tea", "cups of tea"), ("bus ticket", "bus tickets"), ("melon", "melons"), ("box of eggs", "boxes of eggs"),
    ]

    static func capitalised(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }

    static func wordProblem(_ r: inout CorpusRandom) -> String {
        let (name, he, his) = r.pick(people)
        let (_, items) = r.pick(things)
        var lines: [String]
        switch r.below(9) {
        case 0:
            let a = r.int(2...40), g = r.int(2...9), k = r.int(2...12)
            lines = ["\(name) has \(a) \(items). \(capitalised(he)) buys \(g) bags with \(k) \(items) in each bag. "
                        + "How many \(items) does \(he) have now?",
                     "\(g) * \(k) = \(g * k).", "\(a) + \(g * k) = \(a + g * k).", "Answer: \(a + g * k) \(items)."]
        case 1:
            let b = r.int(2...30), c = r.int(2...30), a = b + c + r.int(0...60)
            lines = ["\(name) had \(a) \(items). \(capitalised(he)) gave \(b) to \(his) friend and lost \(c). "
                        + "How many \(items) are left?",
                     "\(b) + \(c) = \(b + c).", "\(a) - \(b + c) = \(a - b - c).", "Answer: \(a - b - c) \(items)."]
        case 2:
            let k = r.int(2...12), q = r.int(2...15)
            lines = ["\(k * q) \(items) are shared equally among \(k) children. How many \(items) does each child get?",
                     "\(k * q) / \(k) = \(q).", "Answer: \(q) \(items)."]
        case 3:
            let (g1, g1s) = r.pick(goods)
            var (g2, g2s) = r.pick(goods)
            if g2 == g1 { (g2, g2s) = goods[(goods.firstIndex { $0.0 == g1 }! + 1) % goods.count] }
            let p1 = r.int(2...15), p2 = r.int(1...12), n1 = r.int(2...9), n2 = r.int(2...9)
            lines = ["A \(g1) costs \(p1) dollars and a \(g2) costs \(p2) dollars. \(name) buys \(n1) \(g1s) and "
                        + "\(n2) \(g2s). How much does \(he) pay?",
                     "\(n1) * \(p1) = \(n1 * p1).", "\(n2) * \(p2) = \(n2 * p2).",
                     "\(n1 * p1) + \(n2 * p2) = \(n1 * p1 + n2 * p2).", "Answer: \(n1 * p1 + n2 * p2) dollars."]
        case 4:
            let vehicle = r.pick(["train", "bus", "car", "boat", "cyclist"])
            let v = r.int(3...24) * 5, h = r.int(2...8)
            if r.chance(50) {
                lines = ["A \(vehicle) travels at \(v) kilometres per hour for \(h) hours. How far does it travel?",
                         "\(v) * \(h) = \(v * h).", "Answer: \(v * h) kilometres."]
            } else {
                lines = ["A \(vehicle) travels \(v * h) kilometres in \(h) hours. What is its average speed?",
                         "\(v * h) / \(h) = \(v).", "Answer: \(v) kilometres per hour."]
            }
        case 5:
            let l = r.int(3...30), w = r.int(2...20)
            lines = ["A garden is \(l) metres long and \(w) metres wide. What are its area and perimeter?",
                     "Area: \(l) * \(w) = \(l * w).", "Perimeter: 2 * (\(l) + \(w)) = \(2 * (l + w)).",
                     "Answer: the area is \(l * w) square metres and the perimeter is \(2 * (l + w)) metres."]
        case 6:
            let child = he == "she" ? r.pick(["daughter", "son"]) : r.pick(["son", "daughter"])
            let c = r.int(3...15), k = r.int(2...5), y = r.int(2...20)
            lines = ["\(name) is \(k) times as old as \(his) \(child). The \(child) is \(c) years old. "
                        + "How old will \(name) be in \(y) years?",
                     "\(k) * \(c) = \(k * c).", "\(k * c) + \(y) = \(k * c + y).", "Answer: \(k * c + y) years."]
        case 7:
            let rows = r.int(4...25), seats = r.int(5...30)
            let taken = r.int(1...(rows * seats - 1))
            lines = ["A hall has \(rows) rows of \(seats) chairs. \(taken) chairs are taken. How many chairs are free?",
                     "\(rows) * \(seats) = \(rows * seats).", "\(rows * seats) - \(taken) = \(rows * seats - taken).",
                     "Answer: \(rows * seats - taken) chairs."]
        default:
            let pct = r.pick([10, 20, 25, 30, 40, 50])
            var price = 10 * r.int(2...40)
            while price * pct % 100 != 0 { price += 10 }
            let cut = price * pct / 100
            let item = r.pick(["coat", "bicycle", "lamp", "chair", "radio", "kettle"])
            lines = ["A shop sells a \(item) for \(price) dollars. In a sale the price is cut by \(pct)%. "
                        + "What is the new price?",
                     "\(price) * \(pct) / 100 = \(cut).", "\(price) - \(cut) = \(price - cut).",
                     "Answer: \(price - cut) dollars."]
        }
        return lines.joined(separator: "\n")
    }
}

func gcd(_ a: Int, _ b: Int) -> Int {
    var x = abs(a), y = abs(b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}

func lcm(_ a: Int, _ b: Int) -> Int { a / gcd(a, b) * b }
