import BamTensors
import Foundation

/// A restricted unpickler for the `data.pkl` of a torch.save'd state dict. It interprets only the
/// opcodes such a pickle uses (Python's Lib/pickletools.py documents each one) and resolves only an
/// allow-list of globals: tensor rebuild functions, storage types and OrderedDict. Everything else
/// (`os.system`, `builtins.eval`, INST/OBJ, extension codes, ...) is refused with an error that
/// names it, so loading a checkpoint never runs code from it. Like torch's `weights_only=True`
/// loader, in spirit, but smaller.
enum Pickle {
    indirect enum Value {
        case none
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        case bytes([UInt8])
        case tuple([Value], depth: Int)
        case list(Box)
        case dict(Box)
        /// An allow-listed global (module, name).
        case global(String, String)
        case storage(Storage)
        case tensor(TensorRef)

        var depth: Int {
            switch self {
            case let .tuple(_, d): d
            case let .list(b), let .dict(b): b.depth
            default: 0
            }
        }

        var kind: String {
            switch self {
            case .none: "None"
            case .bool: "bool"
            case .int: "int"
            case .float: "float"
            case .string: "str"
            case .bytes: "bytes"
            case .tuple: "tuple"
            case .list: "list"
            case .dict: "dict"
            case let .global(m, n): "\(m).\(n)"
            case .storage: "storage"
            case .tensor: "tensor"
            }
        }
    }

    /// A list or dict: mutable after creation (APPEND, SETITEM), shared through the memo.
    final class Box {
        var items: [Value] = []
        var pairs: [(Value, Value)] = []
        var depth = 1
    }

    /// A persistent-id storage reference: ('storage', torch.FloatStorage, key, location, numel).
    struct Storage: Equatable {
        let key: String
        let dtype: DType
        let numel: Int
    }

    struct TensorRef {
        let storage: Storage
        let offset: Int      // in elements
        let shape: [Int]
        let stride: [Int]
    }

    static let maxDepth = 64
    static let maxStack = 1 << 22
    static let maxMemo = 1 << 22

    /// torch storage classes -> dtype (torch/storage.py `_dtype_to_storage_type_map`).
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    static func isAllowed(_ module: String, _ name: String) -> Bool {
        switch module {
        case "torch._utils": ["_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"].contains(name)
        case "collections": name == "OrderedDict"
        case "torch": storageTypes[name] != nil || name == "Size"
        default: false
        }
    }

    /// Runs the pickle and returns the value STOP leaves on the stack.
    ///
    /// Lists and dicts are reference boxes (APPEND and SETITEM mutate them through the memo), so a
    /// hostile pickle can make one contain itself, and such a cycle would never be freed. The
    /// machine therefore remembers every box it made and empties them all when it finishes; the
    /// root dict's pairs (all a state dict needs) are handed back in a fresh box first.
    static func load(_ bytes: [UInt8], file: String) throws -> Value {
        var vm = Machine(code: bytes, file: file)
        defer { for box in vm.boxes { box.items = []; box.pairs = [] } }
        let result = try vm.run()
        guard case let .dict(root) = result else { return result }
        let copy = Box()
        copy.pairs = root.pairs
        copy.depth = root.depth
        return .dict(copy)
    }

    struct Machine {
        let code: [UInt8]
        let file: String
        var pc = 0
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        /// Every list and dict made, so `load` can break cycles between them when it is done.
        var boxes: [Box] = []

        mutating func box() -> Box {
            let b = Box()
            boxes.append(b)
            return b
        }

        init(code: [UInt8], file: String) {
            self.code = code
            self.file = file
        }

        func fail(_ what: String, at: Int? = nil) -> BamError {
            BamError.format(file, at: .byte(at ?? pc), "pickle (data.pkl): \(what)")
        }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= code.count - pc else { throw fail("needs \(n) more bytes but the pickle ends — truncated or corrupt") }
            defer { pc += n }
            return code[pc..<(pc + n)]
        }

        mutating func le(_ n: Int) throws -> UInt64 {
            var v: UInt64 = 0
            for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * i) }
            return v
        }

        mutating func line() throws -> String {
            guard let nl = code[pc...].firstIndex(of: 0x0A), nl - pc <= 1024 else { throw fail("unterminated text line") }
            defer { pc = nl + 1 }
            return String(decoding: code[pc..<nl], as: UTF8.self)
        }

        mutating func push(_ v: Value) throws {
            guard v.depth <= Pickle.maxDepth else { throw fail("values nest deeper than \(Pickle.maxDepth) levels — not a state dict") }
            guard stack.count < Pickle.maxStack else { throw fail("stack exceeds \(Pickle.maxStack) items") }
            stack.append(v)
        }

        mutating func pop() throws -> Value {
            guard let v = stack.popLast() else { throw fail("stack underflow") }
            if let m = marks.last, stack.count < m { throw fail("pops past a MARK") }
            return v
        }

        mutating func popMark() throws -> [Value] {
            guard let m = marks.popLast() else { throw fail("no MARK to pop to") }
            guard m <= stack.count else { throw fail("MARK points past the stack") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }

        mutating func string(_ n: Int) throws -> String {
            guard n <= code.count - pc else { throw fail("a string of \(n) bytes runs past the end of the pickle") }
            return String(decoding: try take(n), as: UTF8.self)
        }

        mutating func global(_ module: String, _ name: String, at: Int) throws -> Value {
            guard Pickle.isAllowed(module, name) else {
                throw BamError(.unsupported, file: file, at: .byte(at),
                               "pickle (data.pkl): refusing GLOBAL \(module).\(name) — bam-mix loads only tensors from PyTorch checkpoints and never runs code from a checkpoint; this file asks to call something else, which may be malicious",
                               expected: "torch._utils._rebuild_tensor_v2, storages or OrderedDict", found: "\(module).\(name)",
                               hint: "use a safetensors copy of the model instead")
            }
            return .global(module, name)
        }

        func tuple(_ items: [Value]) -> Value { .tuple(items, depth: 1 + (items.map(\.depth).max() ?? 0)) }

        mutating func run() throws -> Value {
            while true {
                let at = pc
                guard pc < code.count else { throw fail("ends without STOP — truncated") }
                let op = code[pc]
                pc += 1
                switch op {
                case 0x80: _ = try take(1)                                    // PROTO
                case 0x95: _ = try take(8)                                    // FRAME (a size hint)
                case 0x2E:                                                    // STOP
                    guard stack.count == 1, marks.isEmpty else { throw fail("STOP with \(stack.count) values on the stack", at: at) }
                    return stack[0]
                case 0x28: marks.append(stack.count)                          // MARK
                case 0x7D: try push(.dict(box()))                             // EMPTY_DICT
                case 0x5D: try push(.list(box()))                             // EMPTY_LIST
                case 0x29: try push(tuple([]))                                // EMPTY_TUPLE
                case 0x74: try push(tuple(try popMark()))                     // TUPLE
                case 0x85: try push(tuple([try pop()]))                       // TUPLE1
                case 0x86:                                                    // TUPLE2
                    let b = try pop(), a = try pop()
                    try push(tuple([a, b]))
                case 0x87:                                                    // TUPLE3
                    let c = try pop(), b = try pop(), a = try pop()
                    try push(tuple([a, b, c]))
                case 0x6C:                                                    // LIST
                    let box = self.box()
                    box.items = try popMark()
                    box.depth = 1 + (box.items.map(\.depth).max() ?? 0)
                    try push(.list(box))
                case 0x64:                                                    // DICT
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items", at: at) }
                    let box = self.box()
                    try Self.setItems(box, items, self)
                    try push(.dict(box))
                case 0x61:                                                    // APPEND
                    let v = try pop()
                    guard case let .list(box)? = stack.last else { throw fail("APPEND to a non-list", at: at) }
                    box.items.append(v)
                    box.depth = max(box.depth, 1 + v.depth)
                    guard box.depth <= Pickle.maxDepth else { throw fail("values nest too deep", at: at) }
                case 0x65:                                                    // APPENDS
                    let items = try popMark()
                    guard case let .list(box)? = stack.last else { throw fail("APPENDS to a non-list", at: at) }
                    box.items += items
                    box.depth = max(box.depth, 1 + (items.map(\.depth).max() ?? 0))
                    guard box.depth <= Pickle.maxDepth else { throw fail("values nest too deep", at: at) }
                case 0x73:                                                    // SETITEM
                    let v = try pop(), k = try pop()
                    guard case let .dict(box)? = stack.last else { throw fail("SETITEM on a non-dict", at: at) }
                    try Self.setItems(box, [k, v], self)
                case 0x75:                                                    // SETITEMS
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items", at: at) }
                    guard case let .dict(box)? = stack.last else { throw fail("SETITEMS on a non-dict", at: at) }
                    try Self.setItems(box, items, self)
                case 0x58: try push(.string(try string(Int(try le(4)))))      // BINUNICODE
                case 0x8C: try push(.string(try string(Int(try le(1)))))      // SHORT_BINUNICODE
                case 0x8D:                                                    // BINUNICODE8
                    let n = try le(8)
                    guard n <= UInt64(code.count) else { throw fail("a string of \(n) bytes runs past the end of the pickle", at: at) }
                    try push(.string(try string(Int(n))))
                case 0x42: try push(.bytes(Array(try take(Int(try le(4))))))  // BINBYTES
                case 0x43: try push(.bytes(Array(try take(Int(try le(1))))))  // SHORT_BINBYTES
                case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try le(4)))))  // BININT
                case 0x4B: try push(.int(Int(try le(1))))                     // BININT1
                case 0x4D: try push(.int(Int(try le(2))))                     // BININT2
                case 0x8A:                                                    // LONG1
                    let n = Int(try le(1))
                    guard n <= 8 else { throw fail("integer of \(n) bytes is too large for a tensor size", at: at) }
                    var v = try le(n)
                    if n > 0, n < 8, v & (1 << (8 * UInt64(n) - 1)) != 0 { v |= ~((1 << (8 * UInt64(n))) - 1) }
                    try push(.int(Int(Int64(bitPattern: v))))
                case 0x47:                                                    // BINFLOAT (big-endian)
                    let b = try take(8)
                    try push(.float(Double(bitPattern: b.reduce(0) { $0 << 8 | UInt64($1) })))
                case 0x4E: try push(.none)                                    // NONE
                case 0x88: try push(.bool(true))                              // NEWTRUE
                case 0x89: try push(.bool(false))                             // NEWFALSE
                case 0x71, 0x72:                                              // BINPUT, LONG_BINPUT
                    let i = Int(try le(op == 0x71 ? 1 : 4))
                    guard let top = stack.last else { throw fail("PUT on an empty stack", at: at) }
                    guard memo.count < Pickle.maxMemo else { throw fail("memo exceeds \(Pickle.maxMemo) entries", at: at) }
                    memo[i] = top
                case 0x94:                                                    // MEMOIZE
                    guard let top = stack.last else { throw fail("MEMOIZE on an empty stack", at: at) }
                    guard memo.count < Pickle.maxMemo else { throw fail("memo exceeds \(Pickle.maxMemo) entries", at: at) }
                    memo[memo.count] = top
                case 0x68, 0x6A:                                              // BINGET, LONG_BINGET
                    let i = Int(try le(op == 0x68 ? 1 : 4))
                    guard let v = memo[i] else { throw fail("GET of memo entry \(i), which was never PUT", at: at) }
                    try push(v)
                case 0x30: _ = try pop()                                      // POP
                case 0x31: _ = try popMark()                                  // POP_MARK
                case 0x32:                                                    // DUP
                    guard let top = stack.last else { throw fail("DUP on an empty stack", at: at) }
                    try push(top)
                case 0x63:                                                    // GLOBAL
                    let module = try line(), name = try line()
                    try push(try global(module, name, at: at))
                case 0x93:                                                    // STACK_GLOBAL
                    let n = try pop(), m = try pop()
                    guard case let .string(module) = m, case let .string(name) = n else { throw fail("STACK_GLOBAL needs two strings", at: at) }
                    try push(try global(module, name, at: at))
                case 0x51:                                                    // BINPERSID
                    try push(.storage(try persistentStorage(try pop(), at: at)))
                case 0x52, 0x81:                                              // REDUCE, NEWOBJ
                    let args = try pop(), callee = try pop()
                    try push(try call(callee, args, at: at))
                case 0x62:                                                    // BUILD
                    // Only state on OrderedDicts (their `_metadata`) and parameters: ignored.
                    _ = try pop()
                    guard let target = stack.last else { throw fail("BUILD on an empty stack", at: at) }
                    switch target {
                    case .dict, .tensor: break
                    default: throw fail("BUILD on a \(target.kind) is not allowed", at: at)
                    }
                default:
                    throw BamError(.unsupported, file: file, at: .byte(at),
                               "pickle (data.pkl): opcode not allowed in a state dict (bam-mix's unpickler handles only what torch.save writes for tensors)",
                               found: "opcode 0x\(String(op, radix: 16))")
                }
            }
        }

        static func setItems(_ box: Box, _ items: [Value], _ m: Machine) throws {
            var i = 0
            while i + 1 < items.count {
                box.pairs.append((items[i], items[i + 1]))
                box.depth = max(box.depth, 1 + max(items[i].depth, items[i + 1].depth))
                i += 2
            }
            guard box.depth <= Pickle.maxDepth else { throw m.fail("values nest deeper than \(Pickle.maxDepth) levels") }
        }

        func ints(_ v: Value, _ what: String, at: Int) throws -> [Int] {
            guard case let .tuple(items, _) = v else { throw fail("\(what) is a \(v.kind), a tuple of ints expected", at: at) }
            return try items.map {
                guard case let .int(i) = $0 else { throw fail("\(what) holds a \($0.kind), ints expected", at: at) }
                return i
            }
        }

        func persistentStorage(_ pid: Value, at: Int) throws -> Storage {
            guard case let .tuple(t, _) = pid, t.count == 5, case .string("storage") = t[0],
                  case let .global(module, typeName) = t[1], module == "torch", let dtype = Pickle.storageTypes[typeName],
                  case let .string(key) = t[2], case let .int(numel) = t[4], numel >= 0 else {
                throw fail("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)", at: at)
            }
            return Storage(key: key, dtype: dtype, numel: numel)
        }

        mutating func call(_ callee: Value, _ args: Value, at: Int) throws -> Value {
            guard case let .global(module, name) = callee else { throw fail("REDUCE on a \(callee.kind), not a callable", at: at) }
            guard case let .tuple(a, _) = args else { throw fail("REDUCE arguments are a \(args.kind), a tuple expected", at: at) }
            switch (module, name) {
            case ("torch._utils", "_rebuild_tensor_v2"):
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                guard a.count >= 4, case let .storage(s) = a[0], case let .int(offset) = a[1] else {
                    throw fail("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)", at: at)
                }
                let shape = try ints(a[2], "tensor size", at: at)
                let stride = try ints(a[3], "tensor stride", at: at)
                guard shape.count == stride.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }) else {
                    throw fail("tensor size \(shape), stride \(stride) and offset \(offset) are inconsistent", at: at)
                }
                return .tensor(TensorRef(storage: s, offset: offset, shape: shape, stride: stride))
            case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
                guard let first = a.first, case .tensor = first else { throw fail("\(name) needs a tensor first", at: at) }
                return first
            case ("collections", "OrderedDict"):
                let box = self.box()
                if let first = a.first {
                    // OrderedDict(iterable of pairs)
                    guard case let .list(l) = first else { throw fail("OrderedDict(...) with a \(first.kind)", at: at) }
                    for p in l.items {
                        guard case let .tuple(kv, _) = p, kv.count == 2 else { throw fail("OrderedDict item is not a pair", at: at) }
                        try Self.setItems(box, kv, self)
                    }
                }
                return .dict(box)
            case ("torch", "Size"):
                guard let first = a.first, case .tuple = first else { throw fail("torch.Size needs a tuple", at: at) }
                return first
            default:
                throw fail("\(module).\(name) cannot be called (it is only allowed as a storage type)", at: at)
            }
        }
    }
}
