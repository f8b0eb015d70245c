using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// Single-precision GEMM for the CPU backend, shared by matmul, convolution (im2col) and attention:
/// C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, where op(A) is [M,K] (A stored [K,M] when transA) and op(B) is
/// [K,N] (B stored [N,K] when transB). Rows of C are split across cores. Two inner forms, both TensorPrimitives:
/// NN is a sum of scaled B rows (axpy), NT a dot product per element; TN/TT copy the strided A row first.
/// </summary>
public static unsafe class CpuGemm
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha = 1f, float beta = 0f)
    {
        if (m == 0 || n == 0) return;
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        CpuBackend.ParallelRange(m, (long)n * Math.Max(k, 1), (i0, i1) =>
            Rows(transA, transB, i0, i1, n, k, (float*)pa, lda, (float*)pb, ldb, (float*)pc, ldc, alpha, beta));
    }

    /// <summary>Batched GEMM over contiguous matrices: batch i uses A + i·strideA, etc. Parallel over batch·rows.</summary>
    public static void SgemmBatched(int batch, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC,
        float alpha = 1f, float beta = 0f)
    {
        if (batch == 0 || m == 0 || n == 0) return;
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        CpuBackend.ParallelRange(batch * m, (long)n * Math.Max(k, 1), (r0, r1) =>
        {
            for (int r = r0; r < r1;)
            {
                int bi = r / m, i0 = r - bi * m, i1 = Math.Min(m, i0 + (r1 - r));
                Rows(transA, transB, i0, i1, n, k, (float*)pa + bi * strideA, lda, (float*)pb + bi * strideB, ldb,
                    (float*)pc + bi * strideC, ldc, alpha, beta);
                r += i1 - i0;
            }
        });
    }

    static void Rows(bool transA, bool transB, int i0, int i1, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha, float beta)
    {
        float[]? rowBuf = transA ? System.Buffers.ArrayPool<float>.Shared.Rent(k) : null;
        try
        {
            for (int i = i0; i < i1; i++)
            {
                var crow = new Span<float>(c + (long)i * ldc, n);
                if (beta == 0f) crow.Clear(); else if (beta != 1f) TensorPrimitives.Multiply(crow, beta, crow);
                if (k == 0) continue;
                ReadOnlySpan<float> arow;
                if (transA)
                {
                    for (int p = 0; p < k; p++) rowBuf![p] = a[(long)p * lda + i];
                    arow = rowBuf.AsSpan(0, k);
                }
                else arow = new ReadOnlySpan<float>(a + (long)i * lda, k);

                if (transB)
                {
                    for (int j = 0; j < n; j++)
                        crow[j] += alpha * TensorPrimitives.Dot(arow, new ReadOnlySpan<float>(b + (long)j * ldb, k));
                }
                else
                {
                    for (int p = 0; p < k; p++)
                    {
                        float s = alpha * arow[p];
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * ldb, n), s, crow, crow);
                    }
                }
            }
        }
        finally { if (rowBuf is not null) System.Buffers.ArrayPool<float>.Shared.Return(rowBuf); }
    }
}
