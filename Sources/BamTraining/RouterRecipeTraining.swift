import BamFormats
import Foundation

// The bridge between the router recipe a checkpoint states (BamFormats/RouterRecipe.swift) and the
// losses a run trains with (LossOptions): `finetune` reads the recipe, its flags override each
// field, and the checkpoints it writes state what was used.

extension AuxLossKind {
    public init(_ kind: RouterAuxLoss) {
        switch kind {
        case .btx: self = .btx
        case .switch: self = .switch
        case .none: self = .none
        }
    }
}

extension RouterAuxLoss {
    public init(_ kind: AuxLossKind) {
        switch kind {
        case .btx: self = .btx
        case .switch: self = .switch
        case .none: self = .none
        }
    }
}

extension LossOptions {
    /// The losses a config's recipe states; no router losses for a dense model (nil).
    public init(recipe: RouterLossRecipe?) {
        guard let r = recipe else {
            self.init(aux: .none, auxAlpha: 0, zBeta: 0)
            return
        }
        self.init(aux: AuxLossKind(r.auxLoss), auxAlpha: r.auxLossCoef, zBeta: r.zLossCoef)
    }

    public var recipe: RouterLossRecipe { RouterLossRecipe(auxLoss: RouterAuxLoss(aux), auxLossCoef: auxAlpha, zLossCoef: zBeta) }
}

/// `finetune --aux-loss / --aux-alpha / --z-loss`: each given flag replaces that field of the
/// checkpoint's recipe.
public struct LossOverrides: Sendable, Equatable {
    public var aux: AuxLossKind?
    public var auxAlpha: Double?
    public var zBeta: Double?

    public init(aux: AuxLossKind? = nil, auxAlpha: Double? = nil, zBeta: Double? = nil) {
        self.aux = aux
        self.auxAlpha = auxAlpha
        self.zBeta = zBeta
    }

    /// The losses for a model with `config`, and a line saying where each came from.
    public func resolve(_ config: ModelConfig) -> (losses: LossOptions, description: String) {
        let stated = config.routerLossRecipe
        var l = LossOptions(recipe: stated)
        if let aux { l.aux = aux }
        if let auxAlpha { l.auxAlpha = auxAlpha }
        if let zBeta { l.zBeta = zBeta }
        guard stated != nil else { return (l, "router losses: none (a dense model)") }
        let statesKind = config.raw[RouterRecipeKeys.auxLossKind].map { !$0.isNull } ?? false
        var sources: [String] = []
        if aux != nil { sources.append("--aux-loss") }
        if auxAlpha != nil { sources.append("--aux-alpha") }
        if zBeta != nil { sources.append("--z-loss") }
        let from = statesKind ? "the checkpoint's config.json" : "the checkpoint's config.json (which predates router recipes: btx balancing loss, its coefficients)"
        let how = sources.isEmpty ? "from \(from)" : "from \(from), \(sources.joined(separator: ", ")) overriding"
        return (l, "router losses: \(l.recipe.summary) (\(how))")
    }
}

/// The JSONL log's first line of a mixture's run: the router losses it trains with, under the
/// config.json names.
struct RouterLossRecord: Codable {
    var kind: String
    var coef: Double
    var zCoef: Double

    init(_ l: LossOptions) {
        kind = l.aux.rawValue
        coef = l.auxAlpha
        zCoef = l.zBeta
    }

    enum CodingKeys: String, CodingKey {
        case kind = "router_aux_loss_kind", coef = "router_aux_loss_coef", zCoef = "router_z_loss_coef"
    }
}
