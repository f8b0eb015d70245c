using Mdm.Kernels;

namespace Mdm.Tests.TensorCore;

/// <summary>A tensor-core attention test shape: q [Batch·Heads, Nq, D], k and v [Batch·Heads, Nk, D]; with
/// <see cref="Masked"/>, a random key mask (key 0 always in) where the last batch masks every key.</summary>
public record struct AttentionCase(int Batch, int Heads, int Nq, int Nk, bool Masked)
{
    /// <summary>The mask [Batch, Nk] (all ones when not masked).</summary>
    public readonly float[] KeyMask(Random rng)
    {
        var mask = new float[Batch * Nk];
        for (int i = 0; i < mask.Length; i++)
            mask[i] = !Masked ? 1f : i / Nk == Batch - 1 ? 0f : (i % Nk == 0 || rng.NextDouble() < 0.6) ? 1f : 0f;
        return mask;
    }

    public static ushort[] ToBF16(float[] x)
    {
        var bits = new ushort[x.Length];
        BFloat16.FromFloat(x, bits);
        return bits;
    }

    public static float[] Widen(ushort[] x) => Array.ConvertAll(x, BFloat16.ToFloat);

    /// <summary>An output buffer's contents before the kernel: NaN, so unwritten elements fail the comparison.</summary>
    public static float[] Poison(int n) => Enumerable.Repeat(float.NaN, n).ToArray();
}
