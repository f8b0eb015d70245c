using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Mdm.Kernels.Cpu;

public static unsafe partial class CpuGemm
{
    /// <summary>
    /// C[m, n] += A[m, k] · B[n, k]ᵀ on the calling thread, both operands read along their rows (no packing, no
    /// transpose): the weight gradient of a convolution, dW += dy_n · col_nᵀ, where k is the number of output
    /// positions. Blocks of 4×4 dot products keep sixteen 512-bit accumulators over k; the other rows and columns
    /// (and CPUs without AVX-512) take one dot product at a time.
    /// </summary>
    public static void AccumulateRowDots(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc) =>
        AccumulateRowDots(m, n, k, a, lda, new StridedRows(b, ldb), c, ldc);

    /// <summary>The same with B's rows taken from <paramref name="b"/> (gathered windows of an input plane).</summary>
    internal static void AccumulateRowDots<TRows>(int m, int n, int k, float* a, int lda, TRows b, float* c, int ldc)
        where TRows : struct, IRowSource
    {
        int m4 = UseVector512 && Vector512.IsHardwareAccelerated && k >= 16 ? m / 4 * 4 : 0, n4 = m4 > 0 ? n / 4 * 4 : 0;
        for (int i = 0; i < m4; i += 4)
            for (int j = 0; j < n4; j += 4)
                RowDots4x4(a + (long)i * lda, lda, b.Row(j), b.Row(j + 1), b.Row(j + 2), b.Row(j + 3), c + (long)i * ldc + j, ldc, k);
        for (int i = 0; i < m; i++)
            for (int j = i < m4 ? n4 : 0; j < n; j++)
                c[(long)i * ldc + j] += TensorPrimitives.Dot(new ReadOnlySpan<float>(a + (long)i * lda, k), new ReadOnlySpan<float>(b.Row(j), k));
    }

    /// <summary>
    /// The same product, C[m, n] += A[m, k] · B[n, k]ᵀ on the calling thread, for short rows (small k), where the
    /// horizontal sums of the dot products would cost as much as the products: B is transposed into
    /// <paramref name="scratch"/> [k, n] and the register-tiled kernels run on it.
    /// </summary>
    public static void AccumulateTransposed(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float* scratch)
    {
        Transpose(b, ldb, 0, scratch, n, k, 0, k);
        Tile(a, lda, new StridedRows(scratch, n), c, ldc, m, n, k, 1f, 1f);
    }

    /// <summary>The same with B's rows taken from <paramref name="b"/>: scratch [k, n] gets column j = row j of B.</summary>
    internal static void AccumulateTransposed<TRows>(int m, int n, int k, float* a, int lda, TRows b, float* c, int ldc, float* scratch)
        where TRows : struct, IRowSource
    {
        // 32×32 blocks, as in Transpose, so the strided writes stay in cache lines.
        const int T = 32;
        for (int j0 = 0; j0 < n; j0 += T)
            for (int q0 = 0; q0 < k; q0 += T)
                for (int j = j0, j1 = Math.Min(n, j0 + T); j < j1; j++)
                {
                    float* row = b.Row(j);
                    for (int q = q0, q1 = Math.Min(k, q0 + T); q < q1; q++) scratch[(long)q * n + j] = row[q];
                }
        Tile(a, lda, new StridedRows(scratch, n), c, ldc, m, n, k, 1f, 1f);
    }

    /// <summary>Rows at least this long take the dot-product kernel (AccumulateRowDots), shorter ones AccumulateTransposed.</summary>
    public const int RowDotsMinLength = 512;

    static void RowDots4x4(float* a, int lda, float* b0, float* b1, float* b2, float* b3, float* c, int ldc, int k)
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default,
                         s10 = default, s11 = default, s12 = default, s13 = default,
                         s20 = default, s21 = default, s22 = default, s23 = default,
                         s30 = default, s31 = default, s32 = default, s33 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            var y0 = Vector512.Load(b0 + p); var y1 = Vector512.Load(b1 + p); var y2 = Vector512.Load(b2 + p); var y3 = Vector512.Load(b3 + p);
            var x = Vector512.Load(a0 + p);
            s00 = Vector512.FusedMultiplyAdd(x, y0, s00); s01 = Vector512.FusedMultiplyAdd(x, y1, s01);
            s02 = Vector512.FusedMultiplyAdd(x, y2, s02); s03 = Vector512.FusedMultiplyAdd(x, y3, s03);
            x = Vector512.Load(a1 + p);
            s10 = Vector512.FusedMultiplyAdd(x, y0, s10); s11 = Vector512.FusedMultiplyAdd(x, y1, s11);
            s12 = Vector512.FusedMultiplyAdd(x, y2, s12); s13 = Vector512.FusedMultiplyAdd(x, y3, s13);
            x = Vector512.Load(a2 + p);
            s20 = Vector512.FusedMultiplyAdd(x, y0, s20); s21 = Vector512.FusedMultiplyAdd(x, y1, s21);
            s22 = Vector512.FusedMultiplyAdd(x, y2, s22); s23 = Vector512.FusedMultiplyAdd(x, y3, s23);
            x = Vector512.Load(a3 + p);
            s30 = Vector512.FusedMultiplyAdd(x, y0, s30); s31 = Vector512.FusedMultiplyAdd(x, y1, s31);
            s32 = Vector512.FusedMultiplyAdd(x, y2, s32); s33 = Vector512.FusedMultiplyAdd(x, y3, s33);
        }
        if (p < k)
        {
            // The last k mod 16 positions, zero-padded to a full vector.
            var y0 = Masked(b0 + p, k - p); var y1 = Masked(b1 + p, k - p);
            var y2 = Masked(b2 + p, k - p); var y3 = Masked(b3 + p, k - p);
            var x = Masked(a0 + p, k - p);
            s00 = Vector512.FusedMultiplyAdd(x, y0, s00); s01 = Vector512.FusedMultiplyAdd(x, y1, s01);
            s02 = Vector512.FusedMultiplyAdd(x, y2, s02); s03 = Vector512.FusedMultiplyAdd(x, y3, s03);
            x = Masked(a1 + p, k - p);
            s10 = Vector512.FusedMultiplyAdd(x, y0, s10); s11 = Vector512.FusedMultiplyAdd(x, y1, s11);
            s12 = Vector512.FusedMultiplyAdd(x, y2, s12); s13 = Vector512.FusedMultiplyAdd(x, y3, s13);
            x = Masked(a2 + p, k - p);
            s20 = Vector512.FusedMultiplyAdd(x, y0, s20); s21 = Vector512.FusedMultiplyAdd(x, y1, s21);
            s22 = Vector512.FusedMultiplyAdd(x, y2, s22); s23 = Vector512.FusedMultiplyAdd(x, y3, s23);
            x = Masked(a3 + p, k - p);
            s30 = Vector512.FusedMultiplyAdd(x, y0, s30); s31 = Vector512.FusedMultiplyAdd(x, y1, s31);
            s32 = Vector512.FusedMultiplyAdd(x, y2, s32); s33 = Vector512.FusedMultiplyAdd(x, y3, s33);
        }
        AddSums(c, s00, s01, s02, s03);
        AddSums(c + ldc, s10, s11, s12, s13);
        AddSums(c + 2L * ldc, s20, s21, s22, s23);
        AddSums(c + 3L * ldc, s30, s31, s32, s33);
    }

    /// <summary>The first <paramref name="count"/> (&lt; 16) floats at src, zeros after; reads only those floats
    /// (a full load past the row could touch an unmapped page).</summary>
    static Vector512<float> Masked(float* src, int count)
    {
        float* tail = stackalloc float[16];
        for (int q = 0; q < 16; q++) tail[q] = q < count ? src[q] : 0f;
        return Vector512.Load(tail);
    }

    static void AddSums(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        c[0] += Vector512.Sum(v0); c[1] += Vector512.Sum(v1); c[2] += Vector512.Sum(v2); c[3] += Vector512.Sum(v3);
    }
}
