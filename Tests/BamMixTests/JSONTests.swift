import BamFormats
import Foundation
import Testing

@Suite("JSON parser")
struct JSONTests {
    @Test("canonically equivalent keys are different keys (tokenizer vocabularies hold both spellings)")
    func exactKeys() throws {
        let doc = try JSONParser.parse("{\"\u{E9}\": 1, \"e\u{301}\": 2}")
        let o = try #require(doc.objectValue)
        #expect(o.count == 2)
        #expect(o["\u{E9}"] == .int(1))
        #expect(o["e\u{301}"] == .int(2))
        #expect(JSONValue.string("\u{E9}") != .string("e\u{301}"))
    }

    @Test("a repeated key is an error, or the last value wins when asked")
    func duplicates() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\": 1, \"a\": 2}") }
        let doc = try JSONParser.parse("{\"a\": 1, \"b\": 0, \"a\": 2}", duplicateKeys: .keepLast)
        #expect(doc["a"] == .int(2))
        #expect(doc.objectValue?.keys == ["a", "b"])
    }

    @Test("errors give line, column and byte offset")
    func errors() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": tru\n}")
            Issue.record("should fail")
        } catch let f as JSONParser.Failure {
            #expect(f.line == 2)
            #expect(f.description.contains("line 2"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("round trip keeps order, escapes and numbers")
    func roundTrip() throws {
        let text = #"{"z": [1, 2.5, -3e2, true, null], "a": "tab\there \"q\" \u00e9 \ud83d\ude00", "n": {}}"#
        let v = try JSONParser.parse(text)
        #expect(v.objectValue?.keys == ["z", "a", "n"])
        let again = try JSONParser.parse(v.serialized())
        #expect(again == v)
        #expect(v["a"]?.stringValue == "tab\there \"q\" \u{E9} \u{1F600}")
        #expect(v["z"]?.arrayValue?[2] == .double(-300))
    }
}
