import Foundation

// What a user follows while a run goes and reads after it: a progress line every N steps and a
// summary of smoothed losses. One batch's loss is noisy (a few hard windows move it by tenths of a
// nat), so neither compares single steps.

/// Progress lines of a run: every `every` steps (and at the last), the step, the mean loss of the
/// steps since the previous line, their throughput and the time left at the run's pace so far.
public struct TrainingProgressMeter: Sendable {
    public let total: Int
    public let every: Int
    private var window: [(loss: Double, seconds: Double, tokens: Double)] = []
    private var firstStep: Int?
    private var started: Double?

    /// A line every `every` steps of a run of `total` steps (every <= 0: about 20 lines a run).
    public init(total: Int, every: Int = 0) {
        self.total = total
        self.every = every > 0 ? every : max(1, total / 20)
    }

    /// Records a step finished at `now` (seconds, any monotonic clock) and returns the line due, if any.
    public mutating func add(_ r: StepRecord, now: Double) -> ProgressLine? {
        add(step: r.step, loss: r.loss, seconds: r.seconds, tokens: r.tokensPerSecond * r.seconds, lr: r.lr, now: now)
    }

    /// Records step `step` (its loss, the seconds it took and the tokens it saw) finished at `now`.
    public mutating func add(step: Int, loss: Double, seconds: Double, tokens: Double, lr: Double, now: Double) -> ProgressLine? {
        if firstStep == nil {
            // The clock starts when the first step of this run began (a resumed run starts late).
            firstStep = step - 1
            started = now - seconds
        }
        window.append((loss, seconds, tokens))
        guard step % every == 0 || step >= total else { return nil }
        let meanLoss = window.reduce(0) { $0 + $1.loss } / Double(window.count)
        let windowTokens = window.reduce(0) { $0 + $1.tokens }
        let windowSeconds = window.reduce(0) { $0 + $1.seconds }
        let done = step - firstStep!
        let elapsed = now - started!
        let eta = done > 0 ? elapsed / Double(done) * Double(max(0, total - step)) : .nan
        let line = ProgressLine(step: step, total: total, meanLoss: meanLoss, steps: window.count,
                                tokensPerSecond: windowSeconds > 0 ? windowTokens / windowSeconds : 0, etaSeconds: eta, lr: lr)
        window.removeAll()
        return line
    }
}

/// One progress line.
public struct ProgressLine: Sendable, Equatable {
    public var step: Int
    public var total: Int
    /// Mean training loss of the `steps` steps since the previous line.
    public var meanLoss: Double
    public var steps: Int
    public var tokensPerSecond: Double
    public var etaSeconds: Double
    public var lr: Double
}

/// The mean of the first and of the last 10 % of a run's step losses (at least one step each).
public struct SmoothedLosses: Sendable, Equatable {
    public var first: Double
    public var last: Double
    /// Steps in each mean.
    public var steps: Int

    public init?(_ losses: [Double]) {
        guard !losses.isEmpty else { return nil }
        let n = max(1, losses.count / 10)
        steps = n
        first = losses.prefix(n).reduce(0, +) / Double(n)
        last = losses.suffix(n).reduce(0, +) / Double(n)
    }
}

extension TrainingReport {
    /// The smoothed total training loss (LM + router losses), first and last 10 % of the steps.
    public var smoothedLoss: SmoothedLosses? { SmoothedLosses(steps.map(\.loss)) }
    /// The same for the language-modelling loss alone.
    public var smoothedLMLoss: SmoothedLosses? { SmoothedLosses(steps.map(\.lmLoss)) }
}
