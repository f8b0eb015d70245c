using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>
    /// torch.nn.functional.dropout with a reproducible mask: zeroes each element with probability p and scales the
    /// rest by 1/(1 − p); the mask is Philox stream <paramref name="key"/>, recomputed in the backward. When not
    /// training or p = 0 it returns x itself (nothing launched).
    /// </summary>
    public static Variable Dropout(Variable x, float p, DropoutKey key, bool training = true)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentException($"Dropout: p must be in [0, 1), got {p}");
        if (!training || p == 0f) return x;
        return Record.Op("dropout", Ops.Dropout(x.Data, p, key), [x], (n, g) => [Ops.Dropout(g, p, key)]);
    }
}
