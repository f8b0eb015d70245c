using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

/// <summary>Optional key padding mask [B, Nk] (0 = masked, F32), owned by the caller and kept alive until backward.
/// Bf16Output: the output is bf16, as torch's SDPA output on bf16 inputs is under autocast: a BF16 tensor written by the
/// kernel with BF16 q, k, v, else the f32 output rounded in place (the rounded autocast's emulation). Its gradient is
/// rounded to bf16 values on entry to the backward, as for <see cref="ConvAttributes"/>.</summary>
public sealed record AttentionAttributes(Tensor? Mask, bool Bf16Output = false);
public sealed record RotaryAttributes(float Theta, int Offset);

public static partial class F
{
    /// <summary>
    /// Multi-head attention, inputs q [B,H,Nq,D], k and v [B,H,Nk,D] (F32, or BF16 under autocast's bf16 storage, which
    /// the kernels read as they are and the node keeps for the backward; the gradients are F32, the output F32 or bf16 by
    /// <see cref="AttentionAttributes.Bf16Output"/>). Scores (q·D^-1/4)(k·D^-1/4)ᵀ, softmax in f32.
    /// </summary>
    public static OpDefinition<AttentionAttributes> AttentionOp { get; } = OpDefinition.Register(new OpDefinition<AttentionAttributes>("attention",
        (x, a) =>
        {
            if (a.Bf16Output && x[0].DType == DType.BF16)
            {
                var (ob, lseb) = Ops.Attention(x[0], x[1], x[2], a.Mask, outDType: DType.BF16);
                return (ob, [lseb]);
            }
            var (o, lse) = Ops.Attention(x[0], x[1], x[2], a.Mask);
            return (RoundedIf(a.Bf16Output, o), [lse]);
        }, (c, g) => WithBf16OutputGradient(c.Attributes.Bf16Output, g, gr =>
        {
            var (dq, dk, dv) = Ops.AttentionBackward(c.Input(0), c.Input(1), c.Input(2), c.Output, c.Saved[0], gr, c.Attributes.Mask);
            return [dq, dk, dv];
        }))
    {
        SavesOutput = true,
        Reference = (x, s, a) =>
        {
            var mask = a.Mask is { } m ? Array.ConvertAll(m.ToArray(), v => (double)v) : null;
            return Ref.Attention(x[0], x[1], x[2], mask, s[0][0], s[0][1], s[0][2], s[1][2], s[0][3], out _, out _);
        },
        CheckShapes = [[1, 2, 5, 4], [1, 2, 4, 4], [1, 2, 4, 4]], BenchShapes = [[16, 4, 256, 64], [16, 4, 256, 64], [16, 4, 256, 64]],
        CheckAttributes = new(Mask: null),
    });

    /// <summary>Rotary position encoding along the token axis (rotate-half pairs (i, i + D/2)).</summary>
    public static OpDefinition<RotaryAttributes> RotaryOp { get; } = OpDefinition.Register(new OpDefinition<RotaryAttributes>("rotary",
        (x, a) => (Ops.Rotary(x[0], null, a.Theta, a.Offset), []), (c, g) => [Ops.RotaryBackward(g, null, c.Attributes.Theta, c.Attributes.Offset)])
    {
        Reference = (x, s, a) => Ref.Rotary(x[0], s[0][^2], s[0][^1], a.Theta, a.Offset, inverse: false),
        CheckShapes = [[1, 2, 3, 4]], BenchShapes = [[16, 4, 256, 64]], CheckAttributes = new(10000f, 2),
    });

    /// <summary>Attention with an optional key padding mask (see <see cref="AttentionAttributes"/>).</summary>
    public static Variable Attention(Variable q, Variable k, Variable v, Tensor? mask = null) => AttentionOp.Apply(new(mask), q, k, v);

    /// <summary>Attention whose output autocast keeps in bf16 when <paramref name="bf16Output"/> (see
    /// <see cref="AttentionAttributes"/>); q, k, v are the autocast operands.</summary>
    public static Variable Attention(Variable q, Variable k, Variable v, Tensor? mask, bool bf16Output) => AttentionOp.Apply(new(mask, bf16Output), q, k, v);

    public static Variable Rotary(Variable x, float theta = 10000f, int offset = 0) => RotaryOp.Apply(new(theta, offset), x);
}
