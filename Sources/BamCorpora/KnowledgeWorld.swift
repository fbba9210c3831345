/// The generated world the knowledge domain writes about.
///
/// Continents, seas, countries, mountains, rivers, cities, people and companies with generated
/// names and facts that agree with each other: a river flows through the countries of the cities on
/// its banks, people are born in cities that existed at the time and study under older people of
/// their profession, companies are founded by people of working age in their home city's era. The
/// world is a function of its seed alone, so train and held-out text describe the same world.
///
/// Each fact carries several phrasings; articles choose among them. `heldOutPhrasing` reserves one
/// phrasing of every fact for the held-out split: held-out text states facts the training text also
/// states, in sentences the training text never contains.
public struct KnowledgeWorld: Sendable {
    public static let defaultSeed: UInt64 = 20_240_808

    public struct Country: Sendable {
        public var name: String
        public var language: String
        public var continent: Int
        public var capital: Int = -1
        public var millions: Int
    }
    public struct Mountain: Sendable {
        public var name: String  // "Mount Kessar"
        public var country: Int
        public var height: Int
        public var firstAscent: (person: Int, year: Int)? = nil
    }
    public struct River: Sendable {
        public var name: String  // "Oru"
        public var length: Int
        public var source: Int  // mountain
        public var sea: Int
        public var countries: [Int]
    }
    public struct City: Sendable {
        public var name: String
        public var country: Int
        public var river: Int?
        public var founded: Int
        public var population: Int
        public var industry: Int
    }
    public struct Person: Sendable {
        public var name: String
        public var surname: String
        public var female: Bool
        public var profession: Int
        public var born: Int
        public var birthCity: Int
        public var died: Int
        public var deathCity: Int
        public var teacher: Int?
        public var work: String?
    }
    public struct Company: Sendable {
        public var name: String
        public var founder: Int
        public var founded: Int
        public var city: Int
        public var industry: Int
        public var employees: Int
    }
    /// One fact and its phrasings (at least two).
    public struct Fact: Sendable {
        public var key: String
        public var phrasings: [String]
    }
    /// An article: a title, a lead fact, and further facts (indices into `facts`).
    public struct Article: Sendable {
        public var title: String
        public var lead: Int
        public var body: [Int]
    }

    public let seed: UInt64
    public private(set) var continents: [String] = []
    public private(set) var seas: [String] = []
    public private(set) var countries: [Country] = []
    public private(set) var mountains: [Mountain] = []
    public private(set) var rivers: [River] = []
    public private(set) var cities: [City] = []
    public private(set) var people: [Person] = []
    public private(set) var companies: [Company] = []
    public private(set) var facts: [Fact] = []
    public private(set) var articles: [Article] = []

    /// Industries: (what a city is known for, the activity, what a company makes).
    public static let industries: [(String, String, String)] = [
        ("its glassworks", "glassmaking", "glass"), ("its shipyards", "shipbuilding", "ships"),
        ("its textile mills", "weaving", "cloth"), ("its vineyards", "wine making", "wine"),
        ("its printing houses", "printing", "books"), ("its clockmakers", "clockmaking", "clocks"),
        ("its salt mines", "salt mining", "salt"), ("its silk trade", "the silk trade", "silk"),
        ("its paper mills", "papermaking", "paper"), ("its ironworks", "ironworking", "steel"),
        ("its potteries", "pottery", "porcelain"), ("its breweries", "brewing", "beer"),
        ("its fisheries", "fishing", "canned fish"), ("its tanneries", "leather tanning", "leather"),
    ]
    public static let professions = [
        "painter", "novelist", "poet", "composer", "architect", "engineer", "physicist", "chemist",
        "astronomer", "mathematician", "explorer", "botanist", "physician", "merchant", "sculptor", "historian",
    ]

    /// The world of `seed`; the default world is built once and shared.
    public static func shared(seed: UInt64) -> KnowledgeWorld {
        seed == defaultSeed ? standard : KnowledgeWorld(seed: seed)
    }
    public static let standard = KnowledgeWorld(seed: defaultSeed)

    /// The phrasing of `fact` reserved for the held-out split.
    public func heldOutPhrasing(_ fact: Int) -> Int {
        let f = facts[fact]
        return Int(mix64(fnv1a64(f.key.utf8) ^ seed) % UInt64(f.phrasings.count))
    }

    // MARK: Building

    public init(seed: UInt64, sizes: (countries: Int, mountains: Int, rivers: Int, cities: Int, people: Int,
                                      companies: Int) = (10, 24, 24, 80, 240, 60)) {
        self.seed = seed
        var r = CorpusRandom(seed: seed, "knowledge world")
        var names = NameMaker()
        continents = (0..<3).map { _ in names.place(&r, suffixes: ["a", "ia", "os", "and"]) }
        seas = (0..<5).map { _ in names.place(&r, syllables: 1...1, suffixes: [""]) }

        for _ in 0..<sizes.countries {
            let stem = names.stem(&r)
            let suffix = r.pick(["ia", "ar", "and", "esh", "ora", "ovia", "istan", "el"])
            let name = names.claim(stem + suffix, &r)
            let language = stem + r.pick(["ian", "ish", "ese", "ic"])
            countries.append(Country(name: name, language: Self.capitalised(language), continent: r.below(3),
                                     millions: r.int(1...80)))
        }
        for _ in 0..<sizes.mountains {
            mountains.append(Mountain(name: "Mount " + names.place(&r, syllables: 1...2, suffixes: ["", "ar", "ek", "on"]),
                                      country: r.below(countries.count), height: r.int(1200...7400) / 10 * 10))
        }
        for _ in 0..<sizes.rivers {
            let source = r.below(mountains.count)
            var through = [mountains[source].country]
            for _ in 0..<r.weighted([50, 35, 15]) {
                let c = r.below(countries.count)
                if !through.contains(c) { through.append(c) }
            }
            rivers.append(River(name: names.place(&r, syllables: 1...2, suffixes: ["", "", "a", "e"]),
                                length: r.int(40...2900), source: source, sea: r.below(seas.count), countries: through))
        }
        for _ in 0..<sizes.cities {
            // Most cities stand on a river; the city lies in one of the river's countries.
            var river: Int? = nil
            var country = r.below(countries.count)
            if r.chance(75) {
                let k = r.below(rivers.count)
                river = k
                country = r.pick(rivers[k].countries)
            }
            let magnitude = r.weighted([20, 45, 28, 7])  // thousands, tens of thousands, hundreds of thousands, millions
            let population = [r.int(12...99) * 100, r.int(10...99) * 1000 + r.int(0...9) * 100,
                              r.int(100...999) * 1000, r.int(1000...2600) * 1000][magnitude]
            let name = names.place(&r, syllables: 1...2, suffixes: ["mar", "dor", "holm", "wick", "ford", "stad",
                                                                     "port", "vale", "ton", "bury", "esk", "ana", "is"])
            cities.append(City(name: name, country: country, river: river, founded: r.int(60...185) * 10 + r.int(0...9),
                               population: population, industry: r.below(Self.industries.count)))
        }
        // Every country gets a capital: its largest city, or a new one.
        for c in countries.indices {
            let own = cities.indices.filter { cities[$0].country == c }
            if let largest = own.max(by: { cities[$0].population < cities[$1].population }) {
                countries[c].capital = largest
            } else {
                cities.append(City(name: names.place(&r, syllables: 1...2, suffixes: ["grad", "heim", "polis"]), country: c,
                                   river: nil, founded: r.int(60...150) * 10, population: r.int(200...900) * 1000,
                                   industry: r.below(Self.industries.count)))
                countries[c].capital = cities.count - 1
            }
        }
        makePeople(&r, &names, count: sizes.people)
        makeCompanies(&r, &names, count: sizes.companies)
        // First ascents by explorers.
        for m in mountains.indices where r.chance(60) {
            let climbers = people.indices.filter { professionName(people[$0]) == "explorer" }
            if climbers.isEmpty { break }
            let p = r.pick(climbers)
            let year = people[p].born + r.int(22...min(55, people[p].died - people[p].born - 1))
            mountains[m].firstAscent = (p, year)
        }
        writeFacts()
    }

    func professionName(_ p: Person) -> String { Self.professions[p.profession] }

    mutating func makePeople(_ r: inout CorpusRandom, _ names: inout NameMaker, count: Int) {
        let titleAdjectives = ["Silent", "Red", "Northern", "Winter", "Golden", "Hidden", "Last", "Quiet", "Broken",
                               "Distant", "Blue", "Iron", "White", "Evening", "Lost", "Bright"]
        let titleNouns = ["Harbour", "Garden", "Bridge", "Tower", "River", "Orchard", "Road", "Lantern", "Mirror",
                          "Field", "Morning", "Letter", "Island", "Forest", "Window", "Journey"]
        for _ in 0..<count {
            let female = r.chance(45)
            let given = names.given(&r, female: female)
            let surname = names.surname(&r)
            let profession = r.below(Self.professions.count)
            let born = r.int(1620...1930)
            let candidates = cities.indices.filter { cities[$0].founded < born - 20 }
            let birthCity = candidates.isEmpty ? r.below(cities.count) : r.pick(candidates)
            let died = min(born + r.int(32...94), 2015)
            let sameCountry = cities.indices.filter { cities[$0].country == cities[birthCity].country }
            let deathCity = r.chance(55) ? r.pick(sameCountry) : r.below(cities.count)
            var teacher: Int? = nil
            let teachers = people.indices.filter {
                people[$0].profession == profession && people[$0].born <= born - 15 && people[$0].born >= born - 50
                    && people[$0].died >= born + 18
            }
            if !teachers.isEmpty && r.chance(70) { teacher = r.pick(teachers) }
            let title = "The \(r.pick(titleAdjectives)) \(r.pick(titleNouns))"
            var work: String
            switch Self.professions[profession] {
            // kind|verb|participle|object
            case "painter": work = "painting|painted|painted|\(title)"
            case "novelist": work = "novel|wrote|written|\(title)"
            case "poet": work = "collection of poems|wrote|written|\(title)"
            case "composer": work = "\(r.pick(["opera", "symphony", "song cycle"]))|composed|composed|\(title)"
            case "sculptor": work = "statue|carved|carved|\(title)"
            case "historian": work = "history|wrote|written|\(title)"
            case "architect":
                let c = cities[r.chance(60) ? birthCity : r.below(cities.count)]
                work = "building|designed|designed|the \(c.name) \(r.pick(["Town Hall", "Library", "Opera House", "Observatory", "Exchange", "Cathedral"]))"
            case "engineer":
                let withRiver = cities.indices.filter { cities[$0].river != nil }
                let c = cities[withRiver.isEmpty ? birthCity : r.pick(withRiver)]
                work = c.river.map { "bridge|built|built|the bridge over the \(rivers[$0].name) at \(c.name)" }
                    ?? "railway|built|built|the railway to \(c.name)"
            case "physicist": work = "law|discovered|discovered|the \(surname) \(r.pick(["effect", "law", "constant"]))"
            case "chemist": work = "reaction|discovered|discovered|the \(surname) \(r.pick(["reaction", "process", "test"]))"
            case "astronomer": work = "comet|discovered|discovered|the comet \(surname)"
            case "mathematician": work = "theorem|proved|proved|the \(surname) \(r.pick(["theorem", "conjecture", "inequality"]))"
            case "botanist": work = "plant|described|described|the \(surname) \(r.pick(["lily", "fern", "orchid", "pine"]))"
            case "physician": work = "hospital|founded|founded|the first hospital in \(cities[birthCity].name)"
            case "explorer": work = "expedition|led|led|the first crossing of the \(seas[r.below(seas.count)]) Sea"
            default: work = ""  // merchants are known for their companies
            }
            people.append(Person(name: "\(given) \(surname)", surname: surname, female: female, profession: profession,
                                 born: born, birthCity: birthCity, died: died, deathCity: deathCity, teacher: teacher,
                                 work: work.isEmpty ? nil : work))
        }
    }

    mutating func makeCompanies(_ r: inout CorpusRandom, _ names: inout NameMaker, count: Int) {
        // Founders: merchants first, then anyone who could have founded a company after 1750.
        var pool = people.indices.filter { professionName(people[$0]) == "merchant" && people[$0].died > 1775 }
        pool += people.indices.filter { professionName(people[$0]) != "merchant" && people[$0].died > 1775 && r.chance(30) }
        var used: [Int] = []
        for _ in 0..<count {
            let available = pool.filter { !used.contains($0) }
            if available.isEmpty { break }
            let p = r.pick(available)
            used.append(p)
            let person = people[p]
            let earliest = max(person.born + 22, 1750), latest = min(person.born + 65, person.died - 1, 1995)
            guard earliest <= latest else { continue }
            let year = r.int(earliest...latest)
            let cityChoices = cities.indices.filter { cities[$0].founded < year && cities[$0].country == cities[person.birthCity].country }
            let city = cityChoices.isEmpty ? person.birthCity : (r.chance(60) ? person.birthCity : r.pick(cityChoices))
            let industry = r.chance(65) ? cities[city].industry : r.below(Self.industries.count)
            let style = r.below(4)
            let base: String
            switch style {
            case 0: base = "\(person.surname) and Sons"
            case 1: base = "\(person.surname) \(r.pick(["Works", "Brothers", "and Company"]))"
            case 2: base = "\(cities[city].name) \(Self.capitalised(Self.industries[industry].2)) Company"
            default: base = "\(names.place(&r, syllables: 1...2, suffixes: ["ex", "ia", "on", "a"])) \(r.pick(["Industries", "Trading", "Group"]))"
            }
            let name = names.claimCompany(base)
            companies.append(Company(name: name, founder: p, founded: year, city: city, industry: industry,
                                     employees: [r.int(12...95) * 10, r.int(100...990) * 10, r.int(100...600) * 100][r.weighted([40, 45, 15])]))
        }
    }

    static func capitalised(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }

    /// The indefinite article for `word`.
    static func a(_ word: String) -> String { "AEIOUaeiou".contains(word.first ?? "x") ? "an" : "a" }

    /// "48,200"
    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return out
    }

    /// "A", "A and B", "A, B and C"
    static func list(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    // MARK: Facts and articles

    mutating func fact(_ key: String, _ phrasings: [String]) -> Int {
        precondition(phrasings.count >= 2, "fact \(key) needs at least two phrasings")
        facts.append(Fact(key: key, phrasings: phrasings))
        return facts.count - 1
    }

    mutating func writeFacts() {
        let g = Self.grouped, list = Self.list
        var cityArticles = [[Int]](repeating: [], count: cities.count)
        var countryArticles = [[Int]](repeating: [], count: countries.count)
        var personArticles = [[Int]](repeating: [], count: people.count)
        var mountainArticles = [[Int]](repeating: [], count: mountains.count)
        var riverArticles = [[Int]](repeating: [], count: rivers.count)
        var companyArticles = [[Int]](repeating: [], count: companies.count)
        var seaArticles = [[Int]](repeating: [], count: seas.count)
        var continentArticles = [[Int]](repeating: [], count: continents.count)

        for (i, k) in countries.enumerated() {
            let continent = continents[k.continent]
            countryArticles[i].append(fact("country \(i) continent", [
                "\(k.name) is a country in \(continent).", "\(k.name) lies in \(continent).",
                "The country of \(k.name) is part of \(continent)."]))
            let capital = cities[k.capital].name
            let f = fact("country \(i) capital", [
                "The capital of \(k.name) is \(capital).", "\(capital) is the capital of \(k.name).",
                "The government of \(k.name) sits in \(capital)."])
            countryArticles[i].append(f); cityArticles[k.capital].append(f)
            countryArticles[i].append(fact("country \(i) language", [
                "The official language of \(k.name) is \(k.language).", "People in \(k.name) speak \(k.language).",
                "\(k.language) is the language of \(k.name)."]))
            countryArticles[i].append(fact("country \(i) population", [
                "\(k.name) has about \(k.millions) million inhabitants.", "The population of \(k.name) is about \(k.millions) million.",
                "About \(k.millions) million people live in \(k.name)."]))
            let own = mountains.indices.filter { mountains[$0].country == i }
            if let top = own.max(by: { mountains[$0].height < mountains[$1].height }) {
                let f = fact("country \(i) highest", [
                    "The highest mountain in \(k.name) is \(mountains[top].name).",
                    "\(mountains[top].name) is the highest point of \(k.name).",
                    "No mountain in \(k.name) is higher than \(mountains[top].name)."])
                countryArticles[i].append(f); mountainArticles[top].append(f)
            }
            let ownCities = cities.indices.filter { cities[$0].country == i && $0 != k.capital }
                .sorted { cities[$0].population > cities[$1].population }.prefix(4).map { cities[$0].name }
            if !ownCities.isEmpty {
                countryArticles[i].append(fact("country \(i) cities", [
                    "Other cities in \(k.name) include \(list(ownCities)).",
                    "Besides \(capital), the cities of \(k.name) include \(list(ownCities))."]))
            }
            continentArticles[k.continent].append(countryArticles[i][0])
        }
        for (i, name) in continents.enumerated() {
            let members = countries.indices.filter { countries[$0].continent == i }.map { countries[$0].name }
            if members.isEmpty { continue }
            continentArticles[i].insert(fact("continent \(i)", [
                "\(name) is a continent whose countries include \(list(members)).",
                "The countries of the continent of \(name) include \(list(members)).",
                "\(list(members)) \(members.count == 1 ? "is a country" : "are countries") in \(name)."]), at: 0)
        }
        for (i, m) in mountains.enumerated() {
            let country = countries[m.country].name
            mountainArticles[i].insert(fact("mountain \(i) country", [
                "\(m.name) is a mountain in \(country).", "\(m.name) rises in \(country).",
                "\(m.name) stands in \(country)."]), at: 0)
            mountainArticles[i].append(fact("mountain \(i) height", [
                "\(m.name) is \(g(m.height)) metres high.", "\(m.name) reaches a height of \(g(m.height)) metres.",
                "The summit of \(m.name) is \(g(m.height)) metres above the sea."]))
            if let (p, year) = m.firstAscent {
                let f = fact("mountain \(i) ascent", [
                    "\(m.name) was first climbed by \(people[p].name) in \(year).",
                    "In \(year), \(people[p].name) made the first ascent of \(m.name).",
                    "\(people[p].surname) was the first to reach the summit of \(m.name), in \(year)."])
                mountainArticles[i].append(f); personArticles[p].append(f)
            }
        }
        for (i, river) in rivers.enumerated() {
            let n = river.name
            let names = river.countries.map { countries[$0].name }
            riverArticles[i].append(fact("river \(i) lead", [
                "The \(n) is a river in \(list(names)).", "The \(n) is a river that flows through \(list(names)).",
                "The river \(n) crosses \(list(names))."]))
            riverArticles[i].append(fact("river \(i) length", [
                "The \(n) is \(g(river.length)) kilometres long.", "The length of the \(n) is \(g(river.length)) kilometres.",
                "The \(n) runs for \(g(river.length)) kilometres."]))
            let source = mountains[river.source].name
            let f = fact("river \(i) source", [
                "The \(n) rises on \(source).", "The source of the \(n) lies on \(source).",
                "\(source) is the source of the \(n)."])
            riverArticles[i].append(f); mountainArticles[river.source].append(f)
            let sea = seas[river.sea]
            let mouth = fact("river \(i) mouth", [
                "The \(n) flows into the \(sea) Sea.", "The \(n) empties into the \(sea) Sea.",
                "The mouth of the \(n) is on the \(sea) Sea."])
            riverArticles[i].append(mouth); seaArticles[river.sea].append(mouth)
            let on = cities.indices.filter { cities[$0].river == i }.prefix(5).map { cities[$0].name }
            if !on.isEmpty {
                riverArticles[i].append(fact("river \(i) cities", [
                    "Cities on the \(n) include \(list(on)).", "The \(n) passes \(list(on)).",
                    "\(list(on)) \(on.count == 1 ? "lies" : "lie") on the \(n)."]))
            }
        }
        for (i, sea) in seas.enumerated() {
            let inflow = rivers.indices.filter { rivers[$0].sea == i }.map { rivers[$0].name }
            seaArticles[i].insert(fact("sea \(i) lead", [
                "The \(sea) Sea is a sea off the coast of \(continents[i % continents.count]).",
                "The \(sea) Sea washes the shores of \(continents[i % continents.count]).",
                "The \(sea) Sea lies off \(continents[i % continents.count])."]), at: 0)
            if !inflow.isEmpty {
                seaArticles[i].append(fact("sea \(i) rivers", [
                    "Rivers that flow into the \(sea) Sea include the \(list(inflow.prefix(5).map { $0 })).",
                    "The \(sea) Sea receives the waters of the \(list(inflow.prefix(5).map { $0 }))."]))
            }
        }
        for (i, c) in cities.enumerated() {
            let country = countries[c.country].name
            cityArticles[i].insert(fact("city \(i) country", [
                "\(c.name) is a city in \(country).", "The city of \(c.name) lies in \(country).",
                "\(c.name) is \(Self.a(countries[c.country].language)) \(countries[c.country].language) city in \(country)."]), at: 0)
            if let k = c.river {
                let f = fact("city \(i) river", [
                    "\(c.name) lies on the river \(rivers[k].name).", "The \(rivers[k].name) flows through \(c.name).",
                    "\(c.name) was built on the banks of the \(rivers[k].name)."])
                cityArticles[i].append(f)
            }
            cityArticles[i].append(fact("city \(i) founded", [
                "\(c.name) was founded in \(c.founded).", "The city of \(c.name) dates from \(c.founded).",
                "\(c.name) has existed since \(c.founded)."]))
            cityArticles[i].append(fact("city \(i) population", [
                "\(c.name) has a population of \(g(c.population)).", "About \(g(c.population)) people live in \(c.name).",
                "The population of \(c.name) is \(g(c.population))."]))
            let (known, activity, _) = Self.industries[c.industry]
            cityArticles[i].append(fact("city \(i) industry", [
                "\(c.name) is known for \(known).", "The economy of \(c.name) rests on \(activity).",
                "For centuries \(c.name) has been a centre of \(activity)."]))
            let natives = people.indices.filter { people[$0].birthCity == i }.sorted { people[$0].born < people[$1].born }
                .prefix(4).map { people[$0].name }
            if !natives.isEmpty {
                cityArticles[i].append(fact("city \(i) natives", [
                    "People born in \(c.name) include \(list(natives)).",
                    "\(c.name) is the birthplace of \(list(natives)).",
                    "\(list(natives)) \(natives.count == 1 ? "was" : "were") born in \(c.name)."]))
            }
            let based = companies.indices.filter { companies[$0].city == i }.map { companies[$0].name }
            if !based.isEmpty {
                cityArticles[i].append(fact("city \(i) companies", [
                    "Companies based in \(c.name) include \(list(based)).",
                    "\(c.name) is home to \(list(based)).",
                    "The headquarters of \(list(based)) \(based.count == 1 ? "is" : "are") in \(c.name)."]))
            }
        }
        for (i, p) in people.enumerated() {
            let he = p.female ? "she" : "he", his = p.female ? "her" : "his"
            let job = professionName(p)
            let nationality = countries[cities[p.birthCity].country].language
            let birth = cities[p.birthCity].name, death = cities[p.deathCity].name
            personArticles[i].insert(fact("person \(i) lead", [
                "\(p.name) (\(p.born)-\(p.died)) was \(Self.a(nationality)) \(nationality) \(job).",
                "\(p.name) was \(Self.a(job)) \(job) from \(countries[cities[p.birthCity].country].name) who lived from \(p.born) to \(p.died).",
                "The \(nationality) \(job) \(p.name) lived from \(p.born) to \(p.died)."]), at: 0)
            personArticles[i].append(fact("person \(i) born", [
                "\(p.name) was born in \(birth) in \(p.born).",
                "\(p.surname) was born in \(p.born) in the city of \(birth).",
                "The birthplace of \(p.name) was \(birth), where \(he) was born in \(p.born)."]))
            personArticles[i].append(fact("person \(i) died", [
                "\(p.name) died in \(death) in \(p.died).", "\(p.surname) died in \(p.died) in \(death).",
                "\(p.surname) spent the last years of \(his) life in \(death), where \(he) died in \(p.died)."]))
            if let t = p.teacher {
                let f = fact("person \(i) teacher", [
                    "\(p.name) studied under \(people[t].name).", "\(p.name) was a student of \(people[t].name).",
                    "\(people[t].surname) was the teacher of \(p.name)."])
                personArticles[i].append(f)
            }
            let students = people.indices.filter { people[$0].teacher == i }.map { people[$0].name }
            if !students.isEmpty {
                personArticles[i].append(fact("person \(i) students", [
                    "The students of \(p.name) included \(list(students)).",
                    "\(p.surname) taught \(list(students)).",
                    "\(list(students)) studied under \(p.surname)."]))
            }
            if let w = p.work {
                let parts = w.split(separator: "|").map(String.init)
                let (kind, verb, participle, object) = (parts[0], parts[1], parts[2], parts[3])
                let described = object.hasPrefix("The ") ? "the \(kind) \(object)" : object
                personArticles[i].append(fact("person \(i) work", [
                    "\(p.name) \(verb) \(object).", "\(p.surname) is best known for \(described).",
                    "\(Self.capitalised(described)) was \(participle) by \(p.name)."]))
            }
        }
        for (i, co) in companies.enumerated() {
            let city = cities[co.city].name
            let founder = people[co.founder]
            companyArticles[i].append(fact("company \(i) lead", [
                "\(co.name) is a company based in \(city).", "\(co.name) has its headquarters in \(city).",
                "The company \(co.name) is based in \(city), \(countries[cities[co.city].country].name)."]))
            let f = fact("company \(i) founded", [
                "\(co.name) was founded by \(founder.name) in \(co.founded).", "\(founder.name) founded \(co.name) in \(co.founded).",
                "In \(co.founded), \(founder.name) founded \(co.name)."])
            companyArticles[i].append(f); personArticles[co.founder].append(f)
            let product = Self.industries[co.industry].2
            companyArticles[i].append(fact("company \(i) product", [
                "\(co.name) makes \(product).", "\(co.name) is a maker of \(product).",
                "The main product of \(co.name) is \(product)."]))
            companyArticles[i].append(fact("company \(i) employees", [
                "\(co.name) employs \(g(co.employees)) people.", "\(co.name) has \(g(co.employees)) employees.",
                "About \(g(co.employees)) people work for \(co.name)."]))
        }

        func add(_ title: String, _ list: [Int]) {
            if list.count >= 2 { articles.append(Article(title: title, lead: list[0], body: Array(list.dropFirst()))) }
        }
        for (i, f) in continentArticles.enumerated() { add(continents[i], f) }
        for (i, f) in seaArticles.enumerated() { add("The \(seas[i]) Sea", f) }
        for (i, f) in countryArticles.enumerated() { add(countries[i].name, f) }
        for (i, f) in mountainArticles.enumerated() { add(mountains[i].name, f) }
        for (i, f) in riverArticles.enumerated() { add("\(rivers[i].name) (river)", f) }
        for (i, f) in cityArticles.enumerated() { add(cities[i].name, f) }
        for (i, f) in personArticles.enumerated() { add(people[i].name, f) }
        for (i, f) in companyArticles.enumerated() { add(companies[i].name, f) }
    }
}

/// Pronounceable names from syllables; every name in a world is unique.
struct NameMaker {
    var used: Set<String> = []

    // Mostly single consonants and vowels, so names stay short (a tiny model must learn them).
    static let onsets = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
                         "l", "m", "n", "r", "s", "t", "d", "k", "br", "dr", "gr", "tr", "st", "th", "sh"]
    static let vowels = ["a", "e", "i", "o", "u", "a", "e", "o", "a", "i", "ae", "ei", "ou"]
    static let codas = ["", "", "", "", "", "", "", "n", "r", "l", "s", "m", "nd", "rk", "st"]
    /// Common English words and names the syllables could spell; a world never uses them.
    static let avoided: Set<String> = ["The", "Mount", "Sea", "Sons", "Works", "Company", "Group", "Trading", "Stand",
                                       "Land", "Man", "Son", "Sun", "Ten", "Rose", "Rome", "Gold", "Hand", "Band"]

    func syllable(_ r: inout CorpusRandom) -> String {
        r.pick(Self.onsets) + r.pick(Self.vowels) + r.pick(Self.codas)
    }

    func stem(_ r: inout CorpusRandom, syllables: ClosedRange<Int> = 1...2) -> String {
        var s = ""
        for _ in 0..<r.int(syllables) { s += syllable(&r) }
        return KnowledgeWorld.capitalised(s)
    }

    mutating func claim(_ name: String, _ r: inout CorpusRandom) -> String {
        var n = name
        while used.contains(n) || Self.avoided.contains(n) || n.count < 3 { n = name + syllable(&r) }
        used.insert(n)
        return n
    }

    mutating func place(_ r: inout CorpusRandom, syllables: ClosedRange<Int> = 1...2, suffixes: [String]) -> String {
        claim(stem(&r, syllables: syllables) + r.pick(suffixes), &r)
    }

    mutating func given(_ r: inout CorpusRandom, female: Bool) -> String {
        let endings = female ? ["a", "ine", "el", "ia", "ra", "wen", "ise"] : ["o", "an", "ert", "is", "ric", "en", "as"]
        return claim(stem(&r, syllables: 1...1) + r.pick(endings), &r)
    }

    mutating func surname(_ r: inout CorpusRandom) -> String {
        let endings = ["", "", "", "sen", "ov", "ard", "ez", "ini", "berg", "ley", "ski"]
        let ending = r.pick(endings)
        return claim(stem(&r, syllables: ending.isEmpty ? 2...2 : 1...1) + ending, &r)
    }

    mutating func claimCompany(_ name: String) -> String {
        var n = name, i = 2
        while used.contains(n) { n = "\(name) \(i)"; i += 1 }
        used.insert(n)
        return n
    }
}
