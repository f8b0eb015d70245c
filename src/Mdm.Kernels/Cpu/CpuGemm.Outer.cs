namespace Mdm.Kernels.Cpu;

public static unsafe partial class CpuGemm
{
    /// <summary>
    /// Cᵀ[k, m] += B[k, positions] · Aᵀ[positions, m] on the calling thread: a convolution's weight gradient with the
    /// output positions as the reduction, dWᵀ += col_n · dy_nᵀ. With dy_n transposed (m·positions floats, small) the
    /// register-tiled kernels broadcast the column values and run full-width FMAs over the m output channels, so there
    /// are no horizontal sums and no transposed column matrix. B's rows (plane windows) are copied KC positions at a
    /// time into <paramref name="pack"/> [k, KC], which keeps a chunk in L2; <paramref name="pack"/> may be null when
    /// B is a plain strided matrix.
    /// </summary>
    internal static void AccumulateOuter<TRows>(int k, int m, int positions, TRows b, float* aT, float* cT, float* pack)
        where TRows : struct, IRowSource
    {
        for (int p0 = 0; p0 < positions; p0 += KC)
        {
            int kc = Math.Min(KC, positions - p0);
            for (int r = 0; r < k; r++)
                new ReadOnlySpan<float>(b.Row(r) + p0, kc).CopyTo(new Span<float>(pack + (long)r * kc, kc));
            Tile(pack, kc, new StridedRows(aT + (long)p0 * m, m), cT, m, k, m, kc, 1f, 1f);
        }
    }

    /// <summary>The same for a row-major B [k, positions] with row stride ldb, read in place (no packing).</summary>
    internal static void AccumulateOuter(int k, int m, int positions, float* b, int ldb, float* aT, float* cT)
    {
        for (int p0 = 0; p0 < positions; p0 += KC)
        {
            int kc = Math.Min(KC, positions - p0);
            Tile(b + p0, ldb, new StridedRows(aT + (long)p0 * m, m), cT, m, k, m, kc, 1f, 1f);
        }
    }

    /// <summary>Output channels from which <see cref="AccumulateOuter{TRows}"/> runs full vector tiles (one 512-bit or two 256-bit accumulators per row).</summary>
    public const int OuterMinChannels = 16;

    /// <summary>Positions per packed chunk of <see cref="AccumulateOuter{TRows}"/>: its pack buffer holds k × PackChunk floats.</summary>
    internal const int PackChunk = KC;
}
