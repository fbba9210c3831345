import BamFormats
import Foundation

/// Per-model results of a pipeline run kept on disk (one JSON file per entry), so that an
/// interrupted run restarts at the first model whose result is missing instead of redoing the
/// whole evaluation. Each file holds the value and the key it was computed for; a file whose key
/// differs (the model was rebuilt, the evaluation settings changed) or that does not decode is
/// recomputed and overwritten, never trusted. Files are written under a temporary name and
/// renamed, so an interruption leaves either the old file or the complete new one.
public struct ResultCache {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    struct Entry<Value: Codable>: Codable {
        var key: String
        var value: Value
    }

    /// The file of entry `name` (any string; made into a file name).
    public func file(_ name: String) -> URL {
        directory.appendingPathComponent(Self.slug(name) + ".json")
    }

    /// The cached value of `name` if its file exists, decodes and was computed for `key`.
    public func cached<Value: Codable>(_ name: String, key: String, as: Value.Type = Value.self) -> Value? {
        guard let data = try? Data(contentsOf: file(name)),
              let entry = try? JSONDecoder().decode(Entry<Value>.self, from: data), entry.key == key else { return nil }
        return entry.value
    }

    /// The cached value of `name` for `key`, or `compute()`'s, stored before it is returned.
    /// `reused` says which it was (for the log).
    public func value<Value: Codable>(_ name: String, key: String, reused: (Bool) -> Void = { _ in },
                                      compute: () throws -> Value) throws -> Value {
        if let v = cached(name, key: key, as: Value.self) {
            reused(true)
            return v
        }
        let v = try compute()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try writeFileAtomically(try encoder.encode(Entry(key: key, value: v)), to: file(name))
        reused(false)
        return v
    }

    /// Lower-case, spaces to dashes, only letters, digits, dashes, dots and parentheses kept.
    static func slug(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-.()")
        return String(name.lowercased().replacingOccurrences(of: " ", with: "-").filter { allowed.contains($0) })
    }

    /// A key part that changes whenever a model or text changes: for a directory each regular
    /// file's name, size and modification time; for a file its own (the pipeline replaces a model
    /// by writing a new directory, and a text by writing a new file). "missing" when absent.
    public static func fingerprint(of url: URL) -> String {
        let fm = FileManager.default
        func stamp(_ path: String, _ name: String) -> String? {
            guard let a = try? fm.attributesOfItem(atPath: path), (a[.type] as? FileAttributeType) == .typeRegular else { return nil }
            let size = (a[.size] as? NSNumber)?.intValue ?? -1
            let mtime = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(name):\(size):\(String(format: "%.6f", mtime))"
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return "missing" }
        guard isDirectory.boolValue else { return stamp(url.path, url.lastPathComponent) ?? "not a regular file" }
        let names = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
        return names.compactMap { stamp(url.appendingPathComponent($0).path, $0) }.joined(separator: ",")
    }
}
