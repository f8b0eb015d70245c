using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// The conditioning after the innermost UNet's <c>forward_conditioning</c>: the pooled embedding added to temb at every
/// level (projected text and/or class label; null when neither), and the tokens and key mask cross-attention uses
/// (mask null when cross-attention is unmasked). Every tensor has the batch of the lowest-resolution stream.
/// </summary>
public sealed record ConditioningState(Variable? CondEmb, Variable? Tokens, Tensor? CrossMask)
{
    public static readonly ConditioningState None = new(null, null, null);

    /// <summary>The first <paramref name="batch"/> samples (the high-resolution streams of a mixed-ratio batch).</summary>
    public ConditioningState ForBatch(int batch)
    {
        int full = CondEmb?.Shape[0] ?? Tokens?.Shape[0] ?? batch;
        if (batch == full) return this;
        return new ConditioningState(
            CondEmb is null ? null : F.Narrow(CondEmb, 0, 0, batch),
            Tokens is null ? null : F.Narrow(Tokens, 0, 0, batch),
            CrossMask?.Slice(0, batch));
    }
}
