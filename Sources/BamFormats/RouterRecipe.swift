import Foundation

// The FFN router recipe of a mixture, as config.json states it (docs/bam-format.md, "Router
// recipe"): how tokens are routed and which losses train the router. `bam-mix mix` writes the
// method's recipe, `bam-mix finetune` and the PyTorch reference read it. Every key is optional;
// a config without them (any checkpoint written before recipes existed) keeps its old meaning.

/// The load-balancing loss of an FFN mixture (`router_aux_loss_kind`).
public enum RouterAuxLoss: String, Sendable, CaseIterable {
    /// BTX (arXiv 2403.07816): E * sum_i u_i P_i with u_i the mean sparse gate.
    case btx
    /// Switch / BAM (arXiv 2408.08274): E * sum_i f_i P_i with f_i the hard fraction of routed tokens.
    case `switch`
    /// No balancing loss.
    case none
}

/// How an FFN mixture routes each token (`ffn_routing`).
public enum FFNRouting: String, Sendable, CaseIterable {
    /// softmax -> the K most probable experts, gates renormalised or not (`router_renormalize`).
    case topK = "top_k"
    /// Switch top-1 with a capacity factor; tokens over capacity skip the FFN (`router_capacity_factor`).
    case `switch`
    /// Gumbel-softmax top-1 while training (temperature max(0.5, exp(-r t)), `router_gumbel_decay` r), argmax at inference.
    case sampleTop1 = "sample_top1"
    /// Every expert, weighted by the dense softmax.
    case soft
}

/// What trains an FFN router: the balancing loss and its coefficient, and the z-loss coefficient.
/// L = L_NLL + sum over FFN mixture layers (auxLossCoef * L_aux + zLossCoef * L_z).
public struct RouterLossRecipe: Sendable, Equatable {
    public var auxLoss: RouterAuxLoss
    public var auxLossCoef: Double
    public var zLossCoef: Double

    public init(auxLoss: RouterAuxLoss, auxLossCoef: Double, zLossCoef: Double) {
        self.auxLoss = auxLoss
        self.auxLossCoef = auxLossCoef
        self.zLossCoef = zLossCoef
    }

    /// BTX's objective: its balancing loss with alpha = 0.01 and no z-loss (BTX section 2.3).
    public static let btx = RouterLossRecipe(auxLoss: .btx, auxLossCoef: 0.01, zLossCoef: 0)
    /// BAM's FFN router objective: the Switch balancing loss plus the z-loss. The paper does not give
    /// the coefficients; 0.01 and 0.001 are Switch's and ST-MoE's.
    public static let bam = RouterLossRecipe(auxLoss: .switch, auxLossCoef: 0.01, zLossCoef: 0.001)

    /// "switch, alpha 0.01, z 0.001", for logs.
    public var summary: String {
        let aux = auxLoss == .none || auxLossCoef == 0 ? "no balancing loss" : "\(auxLoss.rawValue) balancing loss x \(formatCoefficient(auxLossCoef))"
        let z = zLossCoef == 0 ? "no z-loss" : "z-loss x \(formatCoefficient(zLossCoef))"
        return "\(aux), \(z)"
    }

    /// The config.json keys of this recipe.
    public func write(to config: inout JSONObject) {
        config[RouterRecipeKeys.auxLossKind] = .string(auxLoss.rawValue)
        config[RouterRecipeKeys.auxLossCoef] = .double(auxLossCoef)
        config[RouterRecipeKeys.zLossCoef] = .double(zLossCoef)
    }
}

/// The config.json names of the recipe (shared with the GGUF `bam.*` keys, docs/gguf.md).
public enum RouterRecipeKeys {
    public static let auxLossKind = "router_aux_loss_kind"
    public static let auxLossCoef = "router_aux_loss_coef"
    public static let zLossCoef = "router_z_loss_coef"
    public static let routing = "ffn_routing"
    public static let renormalize = "router_renormalize"
    public static let capacityFactor = "router_capacity_factor"
    public static let gumbelDecay = "router_gumbel_decay"
    public static let expertOutputScale = "expert_output_scale"

    /// Every key a GGUF carries as `bam.<key>` so the recipe survives HF -> GGUF -> HF for Mixtral
    /// files too (a BAM file carries its whole config besides).
    public static let all = [auxLossKind, auxLossCoef, zLossCoef, routing, renormalize, capacityFactor, gumbelDecay,
                             expertOutputScale]
}

extension ModelConfig {
    /// The router losses the config states (defaults for absent keys: see MoEConfig); nil for a
    /// dense model.
    public var routerLossRecipe: RouterLossRecipe? {
        moe.map { RouterLossRecipe(auxLoss: $0.auxLoss, auxLossCoef: $0.routerAuxLossCoef, zLossCoef: $0.routerZLossCoef) }
    }

    /// This config with `recipe` written into it (parsed fields and config.json alike), so a
    /// checkpoint says which objective it was trained with.
    public func withRouterLossRecipe(_ recipe: RouterLossRecipe) -> ModelConfig {
        guard case var .mixture(moe) = feedForward else { return self }
        var c = self
        moe.auxLoss = recipe.auxLoss
        moe.routerAuxLossCoef = recipe.auxLossCoef
        moe.routerZLossCoef = recipe.zLossCoef
        c.feedForward = .mixture(moe)
        recipe.write(to: &c.raw)
        return c
    }
}

/// 0.01 -> "0.01", 1e-05 -> "1e-05": the shortest form that reads back exactly.
func formatCoefficient(_ x: Double) -> String { "\(x)" }
