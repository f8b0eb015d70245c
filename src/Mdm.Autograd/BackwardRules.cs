using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// Every built-in op's backward rule, in one table (tinygrad's gradient.py pattern): given the node and the gradient
/// of its output, return the gradient of each input (null where not needed). Each rule delegates to Mdm.Kernels.
/// </summary>
internal static partial class BackwardRules
{
    public static Tensor?[] Apply(Node n, Tensor g)
    {
        var x = n.Inputs;
        bool need0 = n.NeedsGrad(0), need1 = x.Length > 1 && n.NeedsGrad(1);
        switch (n.Op)
        {
            case "add":
            {
                var s = (F.ShapesAttr)n.Attributes!;
                var (da, db) = Ops.AddBackward(g, s.A, s.B, need0, need1);
                return [da, db];
            }
            case "sub":
            {
                var s = (F.ShapesAttr)n.Attributes!;
                var (da, db) = Ops.AddBackward(g, s.A, s.B, need0, need1);
                if (db is not null) Ops.Scale(db, -1f, db);
                return [da, db];
            }
            case "mul":
            {
                var (da, db) = Ops.MulBackward(g, x[0].Data, x[1].Data, need0, need1);
                return [da, db];
            }
            case "scale":
                return [Ops.Scale(g, ((F.ScaleAttr)n.Attributes!).Alpha)];
            case "silu":
                return [Ops.SiluBackward(x[0].Data, g)];
            case "sum":
            {
                var s = (F.SumAttr)n.Attributes!;
                var dx = Ops.SumBackward(g, s.InputShape, s.Axes, s.KeepDims);
                if (s.Scale != 1f) Ops.Scale(dx, s.Scale, dx);
                return [dx];
            }
            case "cast_bf16":
                return [MixedPrecision.RoundToBF16(g)];
            case "checkpoint":
                return Checkpoint.Backward(n, g);
            case "reshape":
                return [Ops.Copy(g.Reshape(((F.ReshapeAttr)n.Attributes!).InputShape))];
            default:
                var extra = ApplyFamily(n, g);
                return extra ?? throw new NotSupportedException($"no backward rule for op '{n.Op}'");
        }
    }

    /// <summary>Rules of further op families (convolution, norms, matmul, attention, shape ops), in BackwardRules.*.cs.</summary>
    static Tensor?[]? ApplyFamily(Node n, Tensor g)
    {
        Tensor?[]? result = null;
        ApplyConv(n, g, ref result);
        ApplyNorm(n, g, ref result);
        ApplyMatmul(n, g, ref result);
        ApplyAttention(n, g, ref result);
        ApplyShape(n, g, ref result);
        ApplyLoss(n, g, ref result);
        return result;
    }

    static partial void ApplyConv(Node n, Tensor g, ref Tensor?[]? result);
    static partial void ApplyNorm(Node n, Tensor g, ref Tensor?[]? result);
    static partial void ApplyMatmul(Node n, Tensor g, ref Tensor?[]? result);
    static partial void ApplyAttention(Node n, Tensor g, ref Tensor?[]? result);
    static partial void ApplyShape(Node n, Tensor g, ref Tensor?[]? result);
    static partial void ApplyLoss(Node n, Tensor g, ref Tensor?[]? result);
}
