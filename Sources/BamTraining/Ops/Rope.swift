import BamTensors

/// RoPE on B sequences whose positions start at 0 each: x (B, T, H, HS), rotated in place
/// (the training forward keeps only the rotated q and k, which is all the backward needs).
public func ropeForward(_ x: UnsafeMutablePointer<Float>, _ rope: RopeTable, B: Int, T: Int, heads H: Int) {
    for b in 0..<B { rope.apply(x + b * T * H * rope.headSize, T: T, heads: H, start: 0) }
}

/// Backward of RoPE: the rotation is orthogonal, so dL/dx = R^T dL/dy = the inverse rotation of
/// the gradient. Applied in place to dx (B, T, H, HS), which holds dL/dy on entry and dL/dx on exit
/// — the one backward op that transforms its buffer instead of accumulating, because the
/// pre-rotation gradient is only ever consumed by the projection's backward right after.
public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, _ rope: RopeTable, B: Int, T: Int, heads H: Int) {
    for b in 0..<B { rope.apply(dx + b * T * H * rope.headSize, T: T, heads: H, start: 0, inverse: true) }
}
