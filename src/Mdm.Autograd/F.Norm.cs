using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

/// <summary>Bf16Output: the norm writes y as a BF16 tensor (autocast's operand for the conv it feeds, with no separate cast
/// pass); its backward rounds the incoming gradient to bf16 as autocast's cast does, and recomputes the rest from the f32 x
/// and the f32 statistics.</summary>
public sealed record GroupNormAttributes(int Groups, float Eps, bool Bf16Output = false);
public sealed record LayerNormAttributes(float Eps);

public static partial class F
{
    /// <summary>torch.nn.functional.group_norm with affine gamma, beta [C]: inputs x, gamma, beta.</summary>
    public static OpDefinition<GroupNormAttributes> GroupNormOp { get; } = OpDefinition.Register(new OpDefinition<GroupNormAttributes>("group_norm",
        (x, a) =>
        {
            var (y, mean, rstd) = Ops.GroupNorm(x[0], a.Groups, x[1], x[2], a.Eps, yType: NormOutputType(a));
            return (y, [mean, rstd]);
        }, (c, g) =>
        {
            using var gr = OutputGradient(g, c.Attributes);
            var r = Ops.GroupNormBackward(gr.Value, c.Input(0), c.Saved[0], c.Saved[1], c.Input(1), c.Attributes.Groups);
            return [r.Dx, r.Dgamma, r.Dbeta];
        })
    {
        Reference = (x, s, a) => Ref.GroupNorm(x[0], s[0], a.Groups, x[1], x[2], null, null, false, a.Eps, out _, out _, out _),
        CheckShapes = [[2, 4, 3, 3], [4], [4]], BenchShapes = NormBenchShapes, CheckAttributes = new(2, 1e-5f), BenchAttributes = new(32, 1e-5f),
    });

    /// <summary>SiLU(GroupNorm(x)), fused: inputs x, gamma, beta.</summary>
    public static OpDefinition<GroupNormAttributes> GroupNormSiluOp { get; } = OpDefinition.Register(new OpDefinition<GroupNormAttributes>("group_norm_silu",
        (x, a) =>
        {
            var (y, mean, rstd) = Ops.GroupNormSilu(x[0], a.Groups, x[1], x[2], a.Eps, yType: NormOutputType(a));
            return (y, [mean, rstd]);
        }, (c, g) =>
        {
            using var gr = OutputGradient(g, c.Attributes);
            var r = Ops.GroupNormSiluBackward(gr.Value, c.Input(0), c.Saved[0], c.Saved[1], c.Input(1), c.Input(2), c.Attributes.Groups);
            return [r.Dx, r.Dgamma, r.Dbeta];
        })
    {
        Reference = (x, s, a) => Ref.GroupNorm(x[0], s[0], a.Groups, x[1], x[2], null, null, true, a.Eps, out _, out _, out _),
        CheckShapes = [[2, 4, 3, 3], [4], [4]], BenchShapes = NormBenchShapes, CheckAttributes = new(2, 1e-5f), BenchAttributes = new(32, 1e-5f),
    });

    /// <summary>SiLU(GroupNorm(x)·(1 + a) + b) with a, b [N, C] (the ResNet block's FiLM), fused: inputs x, gamma, beta, a, b.</summary>
    public static OpDefinition<GroupNormAttributes> GroupNormFilmSiluOp { get; } = OpDefinition.Register(new OpDefinition<GroupNormAttributes>("group_norm_film_silu",
        (x, a) =>
        {
            var (y, mean, rstd) = Ops.GroupNormFilmSilu(x[0], a.Groups, x[1], x[2], x[3], x[4], a.Eps, yType: NormOutputType(a));
            return (y, [mean, rstd]);
        }, (c, g) =>
        {
            using var gr = OutputGradient(g, c.Attributes);
            var r = Ops.GroupNormFilmSiluBackward(gr.Value, c.Input(0), c.Saved[0], c.Saved[1], c.Input(1), c.Input(2), c.Input(3), c.Input(4), c.Attributes.Groups);
            return [r.Dx, r.Dgamma, r.Dbeta, r.Da, r.Db];
        })
    {
        Reference = (x, s, a) => Ref.GroupNorm(x[0], s[0], a.Groups, x[1], x[2], x[3], x[4], true, a.Eps, out _, out _, out _),
        CheckShapes = [[2, 4, 3, 3], [4], [4], [2, 4], [2, 4]], BenchShapes = [.. NormBenchShapes, [16, 128], [16, 128]],
        CheckAttributes = new(2, 1e-5f), BenchAttributes = new(32, 1e-5f),
    });

    /// <summary>torch.nn.functional.layer_norm over the last axis with gamma, beta [D]: inputs x, gamma, beta.</summary>
    public static OpDefinition<LayerNormAttributes> LayerNormOp { get; } = OpDefinition.Register(new OpDefinition<LayerNormAttributes>("layer_norm",
        (x, a) =>
        {
            var (y, mean, rstd) = Ops.LayerNorm(x[0], x[1], x[2], a.Eps);
            return (y, [mean, rstd]);
        }, (c, g) =>
        {
            var r = Ops.LayerNormBackward(g, c.Input(0), c.Saved[0], c.Saved[1], c.Input(1));
            return [r.Dx, r.Dgamma, r.Dbeta];
        })
    {
        Reference = (x, s, a) => Ref.LayerNorm(x[0], s[0][^1], x[1], x[2], a.Eps, out _, out _, out _),
        CheckShapes = [[3, 5], [5], [5]], BenchShapes = [[16 * 256, 512], [512], [512]], CheckAttributes = new(1e-5f),
    });

    /// <summary>A 32² UNet level: x [16, 128, 32, 32], gamma and beta [128].</summary>
    static int[][] NormBenchShapes => [[16, 128, 32, 32], [128], [128]];

    /// <param name="bf16Output">write y as a BF16 tensor (see <see cref="GroupNormAttributes"/>)</param>
    public static Variable GroupNorm(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f, bool bf16Output = false) =>
        GroupNormOp.Apply(new(groups, eps, bf16Output), x, gamma, beta);

    public static Variable GroupNormSilu(Variable x, int groups, Variable gamma, Variable beta, float eps = 1e-5f, bool bf16Output = false) =>
        GroupNormSiluOp.Apply(new(groups, eps, bf16Output), x, gamma, beta);

    public static Variable GroupNormFilmSilu(Variable x, int groups, Variable gamma, Variable beta, Variable a, Variable b, float eps = 1e-5f,
        bool bf16Output = false) =>
        GroupNormFilmSiluOp.Apply(new(groups, eps, bf16Output), x, gamma, beta, a, b);

    static DType NormOutputType(GroupNormAttributes a) => a.Bf16Output ? DType.BF16 : DType.F32;

    /// <summary>The gradient the norm's backward takes: g rounded to bf16 (as F32) after a BF16 output, else g itself.</summary>
    static OwnedIf OutputGradient(Tensor g, GroupNormAttributes a) => a.Bf16Output ? new(Ops.RoundToBF16(g), true) : new(g, false);

    readonly struct OwnedIf(Tensor value, bool owned) : IDisposable
    {
        public Tensor Value => value;
        public void Dispose() { if (owned) value.Dispose(); }
    }

    public static Variable LayerNorm(Variable x, Variable gamma, Variable beta, float eps = 1e-5f) => LayerNormOp.Apply(new(eps), x, gamma, beta);
}
