/// Everyday narrative for the general domain: short stories and letters from a grammar.
///
/// Plain English with the most common words, everyday names, places and objects, numbers written
/// as words — deliberately unlike the other domains (no digits, no generated names, no code). A
/// story keeps its characters: one protagonist with consistent pronouns, sometimes a companion.
enum Narrative {
    struct Character {
        var name: String
        var female: Bool
        /// The writer of a letter: "I", "me", "my" (the event templates need no verb changes for it).
        var firstPerson = false
        var he: String { firstPerson ? "I" : female ? "she" : "he" }
        var him: String { firstPerson ? "me" : female ? "her" : "him" }
        var his: String { firstPerson ? "my" : female ? "her" : "his" }
        var He: String { firstPerson ? "I" : female ? "She" : "He" }
        var His: String { firstPerson ? "My" : female ? "Her" : "His" }
    }

    static let girls = ["Anna", "Clara", "Emma", "Lucy", "Maria", "Nina", "Rosa", "Julia", "Hannah", "Lily", "Ella",
                        "Grace", "Zoe", "Alice", "Mila", "Sara", "Eva", "Kate"]
    static let boys = ["Ben", "Tom", "Max", "Leo", "Jack", "Paul", "Noah", "Oscar", "Peter", "Hugo", "Luke",
                       "Adam", "Theo", "Eric", "David", "Daniel", "Simon", "Jacob"]
    static let relatives = [("mother", true), ("father", false), ("sister", true), ("brother", false),
                            ("grandmother", true), ("grandfather", false), ("aunt", true), ("uncle", false),
                            ("cousin", true), ("friend", false), ("friend", true), ("neighbour", false)]
    static let numberWords = ["two", "three", "four", "five", "six", "seven", "eight", "ten", "a dozen"]
    static let fruit = ["apples", "pears", "oranges", "plums", "cherries", "bananas", "peaches", "grapes", "lemons"]
    static let vegetables = ["carrots", "potatoes", "onions", "tomatoes", "beans", "peas", "cucumbers", "leeks"]
    static let topics = ["birds", "the sea", "old castles", "trains", "the stars", "dinosaurs", "gardens",
                         "the moon", "boats", "mountains", "insects", "cooking", "music", "faraway islands"]
    /// When a story starts, with the weather that fits it (indices into `weather`).
    static let times: [(String, [Int])] = [
        ("On Saturday morning", [0, 2, 3, 4]), ("One sunny afternoon", [0, 3, 5]), ("After school", [0, 2, 4, 7]),
        ("Early in the morning", [0, 1, 3, 4]), ("Last summer", [0, 3, 5]), ("On a cold winter day", [1, 6]),
        ("One rainy Sunday", [2, 4]), ("On Monday", [0, 1, 2, 4]), ("In the spring", [0, 2, 3]),
        ("One evening", [1, 2, 4]), ("During the holidays", [0, 3, 5]), ("On a windy autumn day", [1, 4, 7]),
    ]
    static let feelings = ["happy", "tired", "proud", "surprised", "a little sad", "hungry", "excited", "calm",
                           "sleepy", "curious"]
    static let weather = ["The sun was warm and the sky was clear.", "It was cold, and the wind blew hard.",
                          "A light rain began to fall.", "The air smelled of fresh grass.",
                          "Grey clouds hung over the town.", "It was the warmest day of the year.",
                          "Snow covered the roofs and the streets.", "Leaves were falling from the trees."]

    /// Events at a place: templates with {N} name, {he} {him} {his} {He} {His}, {fruit}, {veg}, {num}, {topic}.
    static let places: [(String, [String])] = [
        ("market", ["{He} bought {num} {fruit} and a loaf of bread.", "The man at the fruit stall gave {him} a few {fruit} for free.",
                    "{He} looked for fresh {veg}, but they were sold out.", "{N} paid with a coin and counted the change.",
                    "The market was full of people and noise.", "{He} carried the heavy bag home in both hands."]),
        ("park", ["{He} fed the ducks by the pond.", "{He} sat on a bench and read a book about {topic}.",
                  "Some children were playing with a red ball.", "A dog ran after a stick and brought it back.",
                  "{N} walked around the lake twice.", "{He} watched the clouds move slowly across the sky."]),
        ("kitchen", ["{He} baked a cake with {num} eggs and a cup of sugar.", "The soup needed more salt, so {he} added a little.",
                     "{N} washed the cups and put them on the shelf.", "{He} cut the {veg} into small pieces.",
                     "The whole house smelled of warm bread.", "{He} made tea and sat by the window."]),
        ("library", ["{He} borrowed a book about {topic}.", "The librarian showed {him} a shelf of old maps.",
                     "{N} read quietly for an hour.", "{He} found a picture of {topic} and copied it into {his} notebook.",
                     "It was so quiet that {he} could hear the clock."]),
        ("beach", ["{He} built a sand castle with a deep moat.", "The water was cold, but {he} swam for a while.",
                   "{N} collected shells and put them in a bucket.", "The waves washed away {his} footprints.",
                   "A boat with white sails passed far away."]),
        ("garden", ["{He} planted {veg} in a long row.", "{N} watered the flowers before lunch.",
                    "A bird sat on the fence and sang.", "{He} picked {num} {treefruit} from the old tree.",
                    "{He} pulled out the weeds, one by one."]),
        ("school", ["The teacher asked {him} to read a poem aloud.", "At lunch {he} shared {his} sandwich with a friend.",
                    "{N} drew a map of the town in {his} notebook.", "In the afternoon the class learned about {topic}.",
                    "{He} forgot {his} pencil, so a friend lent {him} one."]),
        ("station", ["The train was ten minutes late.", "{He} bought a ticket and waited on the platform.",
                     "{N} looked out of the window at the fields.", "An old woman asked {him} about the next train.",
                     "The station clock was very large and very loud."]),
        ("shop", ["{He} needed new shoes for the winter.", "The shopkeeper wrapped the present in blue paper.",
                  "{N} counted {his} money twice before paying.", "{He} could not decide between two hats."]),
    ]
    /// Questions with the answers that fit them.
    static let dialogues: [(String, [String])] = [
        ("Can I help you?", ["Yes, please", "No, thank you", "Thank you, I am just looking"]),
        ("Where are you going?", ["Home", "I am not sure yet", "To see a friend"]),
        ("Would you like some tea?", ["Yes, please", "No, thank you", "Maybe later"]),
        ("Is this seat free?", ["Of course", "Yes, it is", "I am sorry, it is taken"]),
        ("Have you seen my keys?", ["No, I have not", "They are on the table", "I am sorry, I have not"]),
        ("Do you know what time it is?", ["It is almost noon", "I am not sure", "It is half past four"]),
        ("Are you hungry?", ["Yes, very", "Not yet", "A little"]),
    ]
    static let askers = ["an old man", "the shopkeeper", "a young woman", "a boy with a kite", "the driver",
                         "a girl in a yellow coat"]
    static let endings = ["In the evening, {N} told {his} {rel} about the day.", "Then {he} walked home slowly.",
                          "It had been a good day.", "That night {he} slept very well.",
                          "{N} decided to come back the next week.", "On the way home {he} sang a little song."]

    static func character(_ r: inout CorpusRandom) -> Character {
        let female = r.chance(50)
        return Character(name: r.pick(female ? girls : boys), female: female)
    }

    /// The template with its {slots} filled, left to right.
    static func fill(_ template: String, _ c: Character, _ r: inout CorpusRandom) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let close = rest[open...].firstIndex(of: "}")!
            switch rest[rest.index(after: open)..<close] {
            case "N": out += c.name
            case "he": out += c.he
            case "him": out += c.him
            case "his": out += c.his
            case "He": out += c.He
            case "His": out += c.His
            case "fruit": out += r.pick(fruit)
            case "treefruit": out += r.pick(["apples", "pears", "plums", "cherries", "peaches", "lemons"])
            case "veg": out += r.pick(vegetables)
            case "num": out += r.pick(numberWords)
            case "topic": out += r.pick(topics)
            case "rel": out += r.pick(relatives).0
            case let slot: preconditionFailure("Narrative: unknown slot {\(slot)} in \(template)")
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    static func document(_ r: inout CorpusRandom) -> String {
        r.chance(80) ? story(&r) : letter(&r)
    }

    static func story(_ r: inout CorpusRandom) -> String {
        let c = character(&r)
        var sentences: [String] = []
        let visits = r.sample(places, r.weighted([0, 60, 35, 5]))
        let (relative, relFemale) = r.pick(relatives)
        let companion = r.chance(35)
        for (n, (place, events)) in visits.enumerated() {
            if n == 0 {
                let (time, fitting) = r.pick(times)
                if companion {
                    sentences.append("\(time), \(c.name) went to the \(place) with \(c.his) \(relative).")
                } else {
                    sentences.append("\(time), \(c.name) \(r.pick(["went", "walked", "went", "ran", "cycled"])) to the \(place).")
                }
                if r.chance(40) { sentences.append(weather[r.pick(fitting)]) }
            } else {
                sentences.append("\(r.pick(["After that", "Later", "In the afternoon", "Then"])), \(companion ? "they" : c.he) went to the \(place).")
            }
            for e in r.sample(events, r.int(2...min(4, events.count))) { sentences.append(fill(e, c, &r)) }
            if r.chance(30) {
                let asker = companion && r.chance(50) ? "\(c.his) \(relative)" : r.pick(askers)
                let (question, replies) = r.pick(dialogues)
                sentences.append("\"\(question)\" asked \(asker).")
                sentences.append("\"\(r.pick(replies)),\" said \(c.name).")
            }
        }
        if companion && r.chance(50) {
            let other = relFemale ? "she" : "he"
            sentences.append("\(c.His) \(relative) said that \(other) was \(r.pick(feelings)) but glad to be there.")
        }
        if r.chance(60) { sentences.append("\(c.name) felt \(r.pick(feelings)).") }
        sentences.append(fill(r.pick(endings), c, &r))
        // Paragraph lines of three to five sentences.
        var lines: [String] = []
        var i = 0
        while i < sentences.count {
            let k = r.int(3...5)
            lines.append(sentences[i..<min(i + k, sentences.count)].joined(separator: " "))
            i += k
        }
        return lines.joined(separator: "\n")
    }

    static func letter(_ r: inout CorpusRandom) -> String {
        let writer = character(&r)
        let (relative, _) = r.pick(relatives)
        let (place, events) = r.pick(places)
        var lines = ["Dear \(relative == "friend" || relative == "neighbour" || relative == "cousin" ? r.pick(girls + boys) : relative.prefix(1).uppercased() + relative.dropFirst()),"]
        var body = [r.pick(["I hope you are well.", "Thank you for your last letter.", "How are you?",
                            "I am sorry that I did not write sooner."])]
        body.append("\(r.pick(["Last week", "Yesterday", "On Sunday", "This morning"])) I went to the \(place).")
        let me = Character(name: "I", female: writer.female, firstPerson: true)
        for e in r.sample(events, r.int(1...3)) { body.append(fill(e, me, &r)) }
        body.append(r.pick(["I miss you very much.", "I will tell you more when we meet.",
                            "Please write back soon.", "Next month I will visit you again."]))
        lines.append(body.joined(separator: " "))
        lines.append(r.pick(["Love,", "With love,", "Best wishes,", "See you soon,"]))
        lines.append(writer.name)
        return lines.joined(separator: "\n")
    }
}
