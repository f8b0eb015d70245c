using System.Buffers;
using System.Runtime.Intrinsics;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// Single-precision GEMM for the CPU backend, shared by matmul, convolution (implicit GEMM) and attention:
/// C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, where op(A) is [M,K] (A stored [K,M] when transA) and op(B) is
/// [K,N] (B stored [N,K] when transB). Transposed operands are first packed into plain row-major copies (O(MK + KN)
/// work against O(MNK)), so register-tiled kernels do all the arithmetic, streaming K in L2-sized chunks: an 8×32 block
/// of C in sixteen 512-bit accumulators where the CPU has AVX-512 (8×16 in eight for a remainder of 16 or more
/// columns, then 8×8 in eight 256-bit ones for 8 or more), else (and for the last rows) a 4×32 block in sixteen 256-bit ones. Tiles of 64 rows × 256 columns are
/// split across cores.
/// </summary>
public static unsafe partial class CpuGemm
{
    const int MR = 4, NR = 32, KC = 256, NC = 256, MC = 64, WideMR = 8;

    /// <summary>Whether the 8×32 AVX-512 kernel runs (default: where the hardware accelerates Vector512). The kernel
    /// lab and the tests switch it to compare and check both paths.</summary>
    public static bool UseVector512 { get; set; } = Vector512.IsHardwareAccelerated;

    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha = 1f, float beta = 0f) =>
        SgemmBatched(1, transA, transB, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, alpha, beta);

    /// <summary>Batched GEMM over contiguous matrices: batch i uses A + i·strideA, etc. Parallel over batch·row blocks.</summary>
    public static void SgemmBatched(int batch, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC,
        float alpha = 1f, float beta = 0f)
    {
        if (batch == 0 || m == 0 || n == 0) return;
        // Pack transposed operands once per batch entry (a broadcast operand, stride 0, is packed once).
        int aBatches = transA ? (strideA == 0 ? 1 : batch) : 0, bBatches = transB ? (strideB == 0 ? 1 : batch) : 0;
        float[]? packA = aBatches > 0 ? ArrayPool<float>.Shared.Rent(checked(aBatches * m * k)) : null;
        float[]? packB = bBatches > 0 ? ArrayPool<float>.Shared.Rent(checked(bBatches * k * n)) : null;
        try
        {
            fixed (float* pA = packA, pB = packB)
            {
                nint pa = (nint)a, pb = (nint)b, pc = (nint)c, ppa = (nint)pA, ppb = (nint)pB;
                if (aBatches > 0)
                    CpuBackend.ParallelRange(aBatches * m, k, (r0, r1) => Transpose((float*)pa, lda, strideA, (float*)ppa, k, m, r0, r1));
                if (bBatches > 0)
                    CpuBackend.ParallelRange(bBatches * k, n, (r0, r1) => Transpose((float*)pb, ldb, strideB, (float*)ppb, n, k, r0, r1));
                // Tasks are (batch, block of MC rows, panel of NC columns): inside a task each K chunk of the B panel
                // (KC×NC floats, L2-sized) is reused by every row block, so wide products stay compute-bound.
                bool packed = PackOperands && (bBatches > 0 ? n : ldb) >= PackMinRowStride;
                int mChunks = (m + MC - 1) / MC, panel = packed ? PanelWidth(n, batch * mChunks) : NC, nPanels = (n + panel - 1) / panel;
                CpuBackend.ParallelRange(batch * mChunks * nPanels, (long)Math.Min(MC, m) * Math.Min(panel, n) * Math.Max(k, 1), (t0, t1) =>
                {
                    for (int t = t0; t < t1; t++)
                    {
                        int bi = t / (mChunks * nPanels), rest = t - bi * mChunks * nPanels;
                        int i0 = rest / nPanels * MC, j0 = rest % nPanels * panel;
                        float* A = aBatches > 0 ? (float*)ppa + (aBatches == 1 ? 0 : (long)bi * m * k) : (float*)pa + bi * strideA;
                        int ldA = aBatches > 0 ? k : lda;
                        float* B = bBatches > 0 ? (float*)ppb + (bBatches == 1 ? 0 : (long)bi * k * n) : (float*)pb + bi * strideB;
                        int ldB = bBatches > 0 ? n : ldb;
                        float* C = (float*)pc + bi * strideC + (long)i0 * ldc + j0;
                        if (packed)
                            TilePacked(A + (long)i0 * ldA, ldA, new StridedRows(B + j0, ldB), C, ldc, Math.Min(MC, m - i0), Math.Min(panel, n - j0), k, alpha, beta);
                        else
                            Tile(A + (long)i0 * ldA, ldA, new StridedRows(B + j0, ldB), C, ldc, Math.Min(MC, m - i0), Math.Min(NC, n - j0), k, alpha, beta);
                    }
                });
            }
        }
        finally
        {
            if (packA is not null) ArrayPool<float>.Shared.Return(packA);
            if (packB is not null) ArrayPool<float>.Shared.Return(packB);
        }
    }

    /// <summary>
    /// Rows [r0, r1) (counted over all batches) of the packed dst[rows × cols] from a source stored transposed,
    /// [cols × rows] with row stride ld: dst[b][r][q] = src[b][q·ld + r]. A: rows = M, cols = K; B: rows = K, cols = N.
    /// </summary>
    static void Transpose(float* src, int ld, long stride, float* dst, int cols, int rows, int r0, int r1)
    {
        // 32×32 blocks so both the strided reads and the writes stay in cache lines.
        const int T = 32;
        for (int t = r0; t < r1;)
        {
            int bi = t / rows, rStart = t - bi * rows, rEnd = Math.Min(rows, rStart + (r1 - t));
            float* s = src + bi * stride;
            float* d = dst + (long)bi * rows * cols;
            for (int q0 = 0; q0 < cols; q0 += T)
            {
                int q1 = Math.Min(cols, q0 + T);
                for (int rb = rStart; rb < rEnd; rb += T)
                {
                    int re = Math.Min(rEnd, rb + T);
                    for (int q = q0; q < q1; q++)
                    {
                        float* sq = s + (long)q * ld;
                        for (int r = rb; r < re; r++) d[(long)r * cols + q] = sq[r];
                    }
                }
            }
            t += rEnd - rStart;
        }
    }

    /// <summary>C[rows, nc] = alpha·A[rows, k]·B[k, nc] + beta·C for one tile: K in chunks of KC, rows in blocks of MR.
    /// B's rows come from <paramref name="b"/> (a strided matrix, or rows gathered by offset for implicit convolution).</summary>
    internal static void Tile<TRows>(float* a, int lda, TRows b, float* c, int ldc, int rows, int nc, int k, float alpha, float beta)
        where TRows : struct, IRowSource
    {
        ScaleC(c, ldc, rows, nc, beta);
        if (k == 0 || alpha == 0f) return;
        for (int p0 = 0; p0 < k; p0 += KC)
        {
            int kc = Math.Min(KC, k - p0);
            int i = 0;
            if (UseVector512 && Vector512.IsHardwareAccelerated)
                for (; i + WideMR <= rows; i += WideMR)
                {
                    float* ai = a + (long)i * lda + p0, ci = c + (long)i * ldc;
                    int j = 0;
                    for (; j + NR <= nc; j += NR) Kernel8x32(ai, lda, b, p0, j, ci + j, ldc, kc, alpha);
                    if (j + NR / 2 <= nc) { Kernel8x16(ai, lda, b, p0, j, ci + j, ldc, kc, alpha); j += NR / 2; }
                    if (j + NR / 4 <= nc) { Kernel8x8(ai, lda, b, p0, j, ci + j, ldc, kc, alpha); j += NR / 4; }
                    for (int r = 0; r < WideMR; r++) EdgeRow(ai + (long)r * lda, b, p0, ci + (long)r * ldc, j, nc, kc, alpha);
                }
            for (; i < rows; i += MR)
            {
                int rb = Math.Min(MR, rows - i);
                float* ai = a + (long)i * lda + p0, ci = c + (long)i * ldc;
                int j = 0;
                if (rb == MR && Vector256.IsHardwareAccelerated)
                    for (; j + NR <= nc; j += NR) Kernel4x32(ai, lda, b, p0, j, ci + j, ldc, kc, alpha);
                // Edges (last columns, or fewer than 4 rows): one row at a time, 8 lanes then scalars.
                for (int r = 0; r < rb; r++) EdgeRow(ai + (long)r * lda, b, p0, ci + (long)r * ldc, j, nc, kc, alpha);
            }
        }
    }

    /// <summary>C[rows, nc] = beta·C (cleared for beta 0, so NaN in an output buffer does not survive).</summary>
    static void ScaleC(float* c, int ldc, int rows, int nc, float beta)
    {
        for (int r = 0; r < rows; r++)
        {
            var crow = new Span<float>(c + (long)r * ldc, nc);
            if (beta == 0f) crow.Clear(); else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(crow, beta, crow);
        }
    }

    static void Kernel4x32<TRows>(float* a, int lda, TRows b, int p0, int j, float* c, int ldc, int kc, float alpha)
        where TRows : struct, IRowSource
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default,
                         c10 = default, c11 = default, c12 = default, c13 = default,
                         c20 = default, c21 = default, c22 = default, c23 = default,
                         c30 = default, c31 = default, c32 = default, c33 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        for (int p = 0; p < kc; p++)
        {
            float* bp = b.Row(p0 + p) + j;
            var b0 = Vector256.Load(bp); var b1 = Vector256.Load(bp + 8); var b2 = Vector256.Load(bp + 16); var b3 = Vector256.Load(bp + 24);
            var x = Vector256.Create(a0[p]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector256.FusedMultiplyAdd(x, b2, c02); c03 = Vector256.FusedMultiplyAdd(x, b3, c03);
            x = Vector256.Create(a1[p]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector256.FusedMultiplyAdd(x, b2, c12); c13 = Vector256.FusedMultiplyAdd(x, b3, c13);
            x = Vector256.Create(a2[p]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector256.FusedMultiplyAdd(x, b2, c22); c23 = Vector256.FusedMultiplyAdd(x, b3, c23);
            x = Vector256.Create(a3[p]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector256.FusedMultiplyAdd(x, b2, c32); c33 = Vector256.FusedMultiplyAdd(x, b3, c33);
        }
        var al = Vector256.Create(alpha);
        Store(c, al, c00, c01, c02, c03);
        Store(c + ldc, al, c10, c11, c12, c13);
        Store(c + 2L * ldc, al, c20, c21, c22, c23);
        Store(c + 3L * ldc, al, c30, c31, c32, c33);
    }

    static void Kernel8x32<TRows>(float* a, int lda, TRows b, int p0, int j, float* c, int ldc, int kc, float alpha)
        where TRows : struct, IRowSource
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
                         c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            float* bp = b.Row(p0 + p) + j;
            float* ap = a + p;
            var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
            var x = Vector512.Create(ap[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(ap[lda]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(ap[2L * lda]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(ap[3L * lda]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(ap[4L * lda]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(ap[5L * lda]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(ap[6L * lda]);
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(ap[7L * lda]);
            c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        var al = Vector512.Create(alpha);
        Accumulate(c, al, c00); Accumulate(c + 16, al, c01); Accumulate(c + ldc, al, c10); Accumulate(c + ldc + 16, al, c11);
        c += 2L * ldc;
        Accumulate(c, al, c20); Accumulate(c + 16, al, c21); Accumulate(c + ldc, al, c30); Accumulate(c + ldc + 16, al, c31);
        c += 2L * ldc;
        Accumulate(c, al, c40); Accumulate(c + 16, al, c41); Accumulate(c + ldc, al, c50); Accumulate(c + ldc + 16, al, c51);
        c += 2L * ldc;
        Accumulate(c, al, c60); Accumulate(c + 16, al, c61); Accumulate(c + ldc, al, c70); Accumulate(c + ldc + 16, al, c71);
    }

    /// <summary>The 8×32 kernel's half for a remainder of 16 to 31 columns (one 512-bit accumulator per row).</summary>
    static void Kernel8x16<TRows>(float* a, int lda, TRows b, int p0, int j, float* c, int ldc, int kc, float alpha)
        where TRows : struct, IRowSource
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b.Row(p0 + p) + j);
            float* ap = a + p;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[0]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[lda]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[2L * lda]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[3L * lda]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[4L * lda]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[5L * lda]), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[6L * lda]), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[7L * lda]), b0, c7);
        }
        var al = Vector512.Create(alpha);
        Accumulate(c, al, c0); Accumulate(c + ldc, al, c1); Accumulate(c + 2L * ldc, al, c2); Accumulate(c + 3L * ldc, al, c3);
        Accumulate(c + 4L * ldc, al, c4); Accumulate(c + 5L * ldc, al, c5); Accumulate(c + 6L * ldc, al, c6); Accumulate(c + 7L * ldc, al, c7);
    }

    /// <summary>The 8×32 kernel's quarter for a remainder of 8 to 15 columns (one 256-bit accumulator per row), so narrow
    /// products (attention's head dimension 8) keep eight independent FMA chains instead of one per row.</summary>
    static void Kernel8x8<TRows>(float* a, int lda, TRows b, int p0, int j, float* c, int ldc, int kc, float alpha)
        where TRows : struct, IRowSource
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b.Row(p0 + p) + j);
            float* ap = a + p;
            c0 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[0]), b0, c0);
            c1 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[lda]), b0, c1);
            c2 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[2L * lda]), b0, c2);
            c3 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[3L * lda]), b0, c3);
            c4 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[4L * lda]), b0, c4);
            c5 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[5L * lda]), b0, c5);
            c6 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[6L * lda]), b0, c6);
            c7 = Vector256.FusedMultiplyAdd(Vector256.Create(ap[7L * lda]), b0, c7);
        }
        var al = Vector256.Create(alpha);
        Accumulate(c, al, c0); Accumulate(c + ldc, al, c1); Accumulate(c + 2L * ldc, al, c2); Accumulate(c + 3L * ldc, al, c3);
        Accumulate(c + 4L * ldc, al, c4); Accumulate(c + 5L * ldc, al, c5); Accumulate(c + 6L * ldc, al, c6); Accumulate(c + 7L * ldc, al, c7);
    }

    /// <summary>c[0..8) += alpha·v.</summary>
    static void Accumulate(float* c, Vector256<float> alpha, Vector256<float> v) => Vector256.FusedMultiplyAdd(alpha, v, Vector256.Load(c)).Store(c);

    /// <summary>c[0..16) += alpha·v.</summary>
    static void Accumulate(float* c, Vector512<float> alpha, Vector512<float> v) => Vector512.FusedMultiplyAdd(alpha, v, Vector512.Load(c)).Store(c);

    static void Store(float* c, Vector256<float> alpha, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3)
    {
        Vector256.FusedMultiplyAdd(alpha, v0, Vector256.Load(c)).Store(c);
        Vector256.FusedMultiplyAdd(alpha, v1, Vector256.Load(c + 8)).Store(c + 8);
        Vector256.FusedMultiplyAdd(alpha, v2, Vector256.Load(c + 16)).Store(c + 16);
        Vector256.FusedMultiplyAdd(alpha, v3, Vector256.Load(c + 24)).Store(c + 24);
    }

    /// <summary>c[j0..nc) += alpha·a[0..kc)·b[p0..p0 + kc, j0..nc) for one row.</summary>
    static void EdgeRow<TRows>(float* a, TRows b, int p0, float* c, int j0, int nc, int kc, float alpha)
        where TRows : struct, IRowSource
    {
        int j = j0;
        if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= nc; j += 8)
            {
                var acc = Vector256<float>.Zero;
                for (int p = 0; p < kc; p++) acc = Vector256.FusedMultiplyAdd(Vector256.Create(a[p]), Vector256.Load(b.Row(p0 + p) + j), acc);
                Vector256.FusedMultiplyAdd(Vector256.Create(alpha), acc, Vector256.Load(c + j)).Store(c + j);
            }
        for (; j < nc; j++)
        {
            float acc = 0f;
            for (int p = 0; p < kc; p++) acc += a[p] * b.Row(p0 + p)[j];
            c[j] += alpha * acc;
        }
    }
}
