using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    internal sealed record GroupNormAttr(int Groups, bool Silu, bool Film);

    /// <summary>torch.nn.functional.group_norm with affine gamma, beta [C].</summary>
    public static Variable GroupNorm(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNorm(x.Data, groups, gamma.Data, beta.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta], new GroupNormAttr(groups, false, false), saved: [mean, rstd]);
    }

    /// <summary>SiLU(GroupNorm(x)), fused.</summary>
    public static Variable GroupNormSilu(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNormSilu(x.Data, groups, gamma.Data, beta.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta], new GroupNormAttr(groups, true, false), saved: [mean, rstd]);
    }

    /// <summary>SiLU(GroupNorm(x)·(1 + a) + b) with a, b [N, C] (the ResNet block's FiLM), fused.</summary>
    public static Variable GroupNormFilmSilu(Variable x, int groups, Variable gamma, Variable beta, Variable a, Variable b, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.GroupNormFilmSilu(x.Data, groups, gamma.Data, beta.Data, a.Data, b.Data, eps);
        return Record.Op("group_norm", y, [x, gamma, beta, a, b], new GroupNormAttr(groups, true, true), saved: [mean, rstd]);
    }

    /// <summary>torch.nn.functional.layer_norm over the last axis with gamma, beta [D].</summary>
    public static Variable LayerNorm(Variable x, Variable gamma, Variable beta, float eps = 1e-5f)
    {
        var (y, mean, rstd) = Ops.LayerNorm(x.Data, gamma.Data, beta.Data, eps);
        return Record.Op("layer_norm", y, [x, gamma, beta], null, saved: [mean, rstd]);
    }
}

internal static partial class BackwardRules
{
    static partial void ApplyNorm(Node n, Tensor g, ref Tensor?[]? result)
    {
        var x = n.Inputs;
        switch (n.Op)
        {
            case "group_norm":
            {
                var a = (F.GroupNormAttr)n.Attributes!;
                var (mean, rstd) = (n.Saved[0], n.Saved[1]);
                if (a.Film)
                {
                    var r = Ops.GroupNormFilmSiluBackward(g, x[0].Data, mean, rstd, x[1].Data, x[2].Data, x[3].Data, x[4].Data, a.Groups);
                    result = [r.Dx, r.Dgamma, r.Dbeta, r.Da, r.Db];
                }
                else if (a.Silu)
                {
                    var r = Ops.GroupNormSiluBackward(g, x[0].Data, mean, rstd, x[1].Data, x[2].Data, a.Groups);
                    result = [r.Dx, r.Dgamma, r.Dbeta];
                }
                else
                {
                    var r = Ops.GroupNormBackward(g, x[0].Data, mean, rstd, x[1].Data, a.Groups);
                    result = [r.Dx, r.Dgamma, r.Dbeta];
                }
                break;
            }
            case "layer_norm":
            {
                var r = Ops.LayerNormBackward(g, x[0].Data, n.Saved[0], n.Saved[1], x[1].Data);
                result = [r.Dx, r.Dgamma, r.Dbeta];
                break;
            }
        }
    }
}
