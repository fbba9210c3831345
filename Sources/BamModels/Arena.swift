import BamTensors

/// A bump allocator for one forward call's activations: one allocation, many disjoint views,
/// freed together. Contents are uninitialised until written (every user writes before reading).
final class Arena: @unchecked Sendable {
    private var blocks: [UnsafeMutablePointer<Float>] = []
    private var children: [Arena] = []

    deinit { for b in blocks { b.deallocate() } }

    func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
        blocks.append(p)
        return p
    }

    /// Keeps another arena (one per concurrent unit of work) alive as long as this one.
    func retain(_ child: Arena) { children.append(child) }

    func zeros(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = take(n)
        p.initialize(repeating: 0, count: max(1, n))
        return p
    }
}
