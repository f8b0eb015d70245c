using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

/// <summary>Drop probability P in [0, 1) and the Philox stream of the mask.</summary>
public sealed record DropoutAttributes(float P, DropoutKey Key);

public static partial class F
{
    /// <summary>The training-mode dropout op: the mask is recomputed from the key in the backward.</summary>
    public static OpDefinition<DropoutAttributes> DropoutOp { get; } = OpDefinition.Register(new OpDefinition<DropoutAttributes>("dropout",
        (x, a) => (Ops.Dropout(x[0], a.P, a.Key), []), (c, g) => [Ops.Dropout(g, c.Attributes.P, c.Attributes.Key)])
    {
        Reference = (x, _, a) => Ref.Dropout(x[0], a.P, a.Key),
        CheckShapes = [[3, 7]], BenchShapes = [[16, 128, 32, 32]], CheckAttributes = new(0.4f, new DropoutKey(7, 3, (1UL << 32) - 1)),
    });

    /// <summary>
    /// torch.nn.functional.dropout with a reproducible mask: zeroes each element with probability p and scales the
    /// rest by 1/(1 − p); the mask is Philox stream <paramref name="key"/>, recomputed in the backward. When not
    /// training or p = 0 it returns x itself (nothing launched).
    /// </summary>
    public static Variable Dropout(Variable x, float p, DropoutKey key, bool training = true)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentException($"Dropout: p must be in [0, 1), got {p}");
        if (!training || p == 0f) return x;
        return DropoutOp.Apply(new(p, key), x);
    }
}
