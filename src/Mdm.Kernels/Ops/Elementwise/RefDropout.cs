namespace Mdm.Kernels.Reference;

public static partial class Ref
{
    /// <summary>x·keep/(1 − p) in float64; element i keeps when uniform(word i%4 of Philox block offset + i/4) &gt; p.</summary>
    public static double[] Dropout(double[] x, float p, DropoutKey key)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            Philox.Words(key.Seed, key.Subsequence, key.Offset + (ulong)(i / 4), out uint w0, out uint w1, out uint w2, out uint w3);
            uint w = (i % 4) switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
            double u = ((w >> 8) + 1.0) / 16777216.0;
            y[i] = u > p ? x[i] / (1.0 - p) : 0.0;
        }
        return y;
    }
}
