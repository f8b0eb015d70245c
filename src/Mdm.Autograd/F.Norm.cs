using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>torch.nn.functional.group_norm with affine gamma, beta [C].</summary>
    public static Variable GroupNorm(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNorm(x.Data, groups, gamma.Data, beta.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta], (n, g) =>
        {
            var r = Ops.GroupNormBackward(g, n.Input(0), n.Saved[0], n.Saved[1], n.Input(1), groups);
            return [r.Dx, r.Dgamma, r.Dbeta];
        }, saved: [mean, rstd]);
    }

    /// <summary>SiLU(GroupNorm(x)), fused.</summary>
    public static Variable GroupNormSilu(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNormSilu(x.Data, groups, gamma.Data, beta.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta], (n, g) =>
        {
            var r = Ops.GroupNormSiluBackward(g, n.Input(0), n.Saved[0], n.Saved[1], n.Input(1), n.Input(2), groups);
            return [r.Dx, r.Dgamma, r.Dbeta];
        }, saved: [mean, rstd]);
    }

    /// <summary>SiLU(GroupNorm(x)·(1 + a) + b) with a, b [N, C] (the ResNet block's FiLM), fused.</summary>
    public static Variable GroupNormFilmSilu(Variable x, int groups, Variable gamma, Variable beta, Variable a, Variable b, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNormFilmSilu(x.Data, groups, gamma.Data, beta.Data, a.Data, b.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta, a, b], (n, g) =>
        {
            var r = Ops.GroupNormFilmSiluBackward(g, n.Input(0), n.Saved[0], n.Saved[1], n.Input(1), n.Input(2), n.Input(3), n.Input(4), groups);
            return [r.Dx, r.Dgamma, r.Dbeta, r.Da, r.Db];
        }, saved: [mean, rstd]);
    }

    /// <summary>torch.nn.functional.layer_norm over the last axis with gamma, beta [D].</summary>
    public static Variable LayerNorm(Variable x, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.LayerNorm(x.Data, gamma.Data, beta.Data, eps);
        return Record.Op("layer_norm", y, [x, gamma, beta], (n, g) =>
        {
            var r = Ops.LayerNormBackward(g, n.Input(0), n.Saved[0], n.Saved[1], n.Input(1));
            return [r.Dx, r.Dgamma, r.Dbeta];
        }, saved: [mean, rstd]);
    }
}
