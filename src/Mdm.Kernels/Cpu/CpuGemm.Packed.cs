using System.Runtime.Intrinsics;

namespace Mdm.Kernels.Cpu;

public static unsafe partial class CpuGemm
{
    /// <summary>Whether Sgemm copies its operands into packed micro-panels first where B's rows lie at least
    /// <see cref="PackMinRowStride"/> floats apart (default). Read in place, such rows (64 KiB apart at N = 16384) map
    /// every row of a K chunk onto the same few L1 sets and pages, and the 8×32 kernel waits on conflict misses. With
    /// closer rows (and for the implicit-GEMM convolution, whose planes sit in L2) the copies cost more than they save.
    /// The kernel lab and the tests switch it to compare and check both paths.</summary>
    public static bool PackOperands { get; set; } = true;

    /// <summary>Row stride of B (floats) from which Sgemm packs.</summary>
    public const int PackMinRowStride = 4096;

    /// <summary>Widest B panel the packed path uses (when widening the panels evens the cores' shares).</summary>
    const int MaxPanel = NC + NC / 2;

    /// <summary>Per-thread pack buffers (pinned, never freed: a pool thread keeps its own for its lifetime).</summary>
    [ThreadStatic] static float[]? packBuffer;

    static float* PackBuffer()
    {
        const int floats = KC * MaxPanel + MC * KC + 16;
        packBuffer ??= GC.AllocateUninitializedArray<float>(floats, pinned: true);
        float* p = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref packBuffer[0]);
        return (float*)(((nint)p + 63) & ~(nint)63);   // 64-byte aligned: each packed row of B is whole cache lines
    }

    /// <summary>
    /// Columns per task of the packed path: NC, or a wider panel (up to <see cref="MaxPanel"/>, a multiple of NR) when
    /// there are few tasks and that makes their count a multiple of the cores (N = 576 on 2 cores: 2 × 288, not
    /// 256 + 256 + 64).
    /// </summary>
    static int PanelWidth(int n, int otherTasks)
    {
        int cores = Environment.ProcessorCount, panels = (n + NC - 1) / NC;
        if (cores == 1 || (long)otherTasks * panels >= 4L * cores || otherTasks * panels % cores == 0) return NC;
        for (int p = (n + MaxPanel - 1) / MaxPanel; p <= panels + cores; p++)
        {
            int width = ((n + p - 1) / p + NR - 1) / NR * NR, count = (n + width - 1) / width;
            if (width <= MaxPanel && otherTasks * count % cores == 0 && n - (count - 1) * width >= width / 2) return width;
        }
        return NC;
    }

    /// <summary>
    /// C[rows, nc] = alpha·A[rows, k]·B[k, nc] + beta·C with both operands packed per K chunk: B into NR-wide
    /// micro-panels [kc × NR] (one is read from L1 by every row block), A into 8-row micro-panels [kc × 8] (one
    /// stream of broadcasts). K is split into equal chunks of at most KC. Rows past the last 8-row block and columns
    /// past the last NR-wide panel run the unpacked kernels of <see cref="Tile{TRows}"/> over the packed B.
    /// </summary>
    internal static void TilePacked<TRows>(float* a, int lda, TRows b, float* c, int ldc, int rows, int nc, int k, float alpha, float beta)
        where TRows : struct, IRowSource
    {
        ScaleC(c, ldc, rows, nc, beta);
        if (k == 0 || alpha == 0f) return;
        float* packB = PackBuffer(), packA = packB + KC * MaxPanel;
        int chunks = (k + KC - 1) / KC, step = (k + chunks - 1) / chunks;
        int panels = nc / NR, tail = nc - panels * NR;
        bool wide = UseVector512 && Vector512.IsHardwareAccelerated;
        int packedRows = wide ? rows / WideMR * WideMR : 0;
        for (int p0 = 0; p0 < k; p0 += step)
        {
            int kc = Math.Min(step, k - p0);
            PackB(b, p0, kc, nc, packB);
            PackA(a + p0, lda, packedRows, kc, packA);
            for (int jb = 0; jb < panels; jb++)
            {
                float* bp = packB + (long)jb * kc * NR, cj = c + jb * NR;
                for (int i = 0; i < packedRows; i += WideMR)
                    Kernel8x32Packed(packA + (long)i * kc, bp, cj + (long)i * ldc, ldc, kc, alpha);
                if (packedRows < rows)
                    Tile(a + (long)packedRows * lda + p0, lda, new StridedRows(bp, NR), cj + (long)packedRows * ldc, ldc,
                        rows - packedRows, NR, kc, alpha, 1f);
            }
            if (tail > 0)
                Tile(a + p0, lda, new StridedRows(packB + (long)panels * kc * NR, tail), c + panels * NR, ldc, rows, tail, kc, alpha, 1f);
        }
    }

    /// <summary>B[p0.., 0..nc) into micro-panels [nc / NR][kc][NR], then the last nc mod NR columns as [kc][tail].</summary>
    static void PackB<TRows>(TRows b, int p0, int kc, int nc, float* dst) where TRows : struct, IRowSource
    {
        int panels = nc / NR, tail = nc - panels * NR;
        float* tailDst = dst + (long)panels * kc * NR;
        for (int p = 0; p < kc; p++)
        {
            float* row = b.Row(p0 + p);
            float* to = dst + (long)p * NR;
            for (int jb = 0; jb < panels; jb++, to += (long)kc * NR)
            {
                float* from = row + jb * NR;
                if (Vector512.IsHardwareAccelerated)
                {
                    Vector512.Load(from).Store(to); Vector512.Load(from + 16).Store(to + 16);
                }
                else
                {
                    Vector256.Load(from).Store(to); Vector256.Load(from + 8).Store(to + 8);
                    Vector256.Load(from + 16).Store(to + 16); Vector256.Load(from + 24).Store(to + 24);
                }
            }
            if (tail > 0) new ReadOnlySpan<float>(row + panels * NR, tail).CopyTo(new Span<float>(tailDst + (long)p * tail, tail));
        }
    }

    /// <summary>A[0..rows, 0..kc) (rows a multiple of 8) into micro-panels [rows / 8][kc][8].</summary>
    static void PackA(float* a, int lda, int rows, int kc, float* dst)
    {
        for (int i = 0; i < rows; i += WideMR)
        {
            float* to = dst + (long)i * kc;
            for (int r = 0; r < WideMR; r++)
            {
                float* from = a + (long)(i + r) * lda;
                for (int p = 0; p < kc; p++) to[p * WideMR + r] = from[p];
            }
        }
    }

    /// <summary>The 8×32 kernel over packed operands: a is [kc][8], b is [kc][32], both read front to back.</summary>
    static void Kernel8x32Packed(float* a, float* b, float* c, int ldc, int kc, float alpha)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
                         c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++, a += WideMR, b += NR)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]);
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
}
