using System.Diagnostics;
using System.Numerics.Tensors;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Lab;

/// <summary>
/// Kernel lab: CPU SGEMM, C[M,N] = A[M,K]·B[K,N] (row-major), in the llm.c manner — versions side by side, naive
/// first, each checked against a float64 reference and timed. The winner is promoted into src/Mdm.Kernels/Cpu/CpuGemm.cs.
///   v1  naive i-j-k loops                                        (the yardstick)
///   v2  row axpy: C[i,:] += A[i,p]·B[p,:] with TensorPrimitives   (CpuGemm before 2026-11-27: memory-bound, B streamed M times)
///   v3  packed, register-tiled 4×32 FMA micro-kernel, K and N blocked for L2, rows split over cores (promoted)
/// run: dotnet run -c Release --project bench/Mdm.Bench -- lab gemm [version]
/// napkin math: FLOPs = 2·M·N·K; a 2-core AVX2/AVX-512 EPYC peaks near 2 cores × 2 FMA × 8 lanes × 2 × ~3 GHz ≈ 190 GFLOP/s.
/// </summary>
public static unsafe class GemmLab
{
    static readonly (int M, int N, int K, string What)[] Shapes =
    [
        (256, 256, 256, "square"),
        (64, 16 * 1024, 576, "conv3x3 64→64 on 16×32², forward (W·col)"),
        (64, 576, 16 * 1024, "conv3x3 64→64, weight gradient (dY·colᵀ as NN after packing)"),
    ];

    public static int Run(string[] args)
    {
        int only = args.Length > 0 && int.TryParse(args[0], out int v) ? v : 0;
        foreach (var (m, n, k, what) in Shapes)
        {
            var rng = new Random(1);
            var a = new float[m * k]; var b = new float[k * n];
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
            for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
            var reference = Reference(a, b, m, n, k, rows: Math.Min(m, 8));
            Console.WriteLine($"{m}×{n}×{k}  ({what})");
            for (int version = 1; version <= 3; version++)
            {
                if (only != 0 && version != only) continue;
                if (version == 1 && (long)m * n * k > 300_000_000L) { Console.WriteLine("  v1  skipped (too slow at this size)"); continue; }
                var c = new float[m * n];
                Run(version, a, b, c, m, n, k);   // warm-up (tiering JIT)
                double err = MaxRelError(c, reference, n);
                var sw = Stopwatch.StartNew();
                int reps = 0;
                do { Run(version, a, b, c, m, n, k); reps++; } while (sw.Elapsed.TotalSeconds < 1.0);
                double ms = sw.Elapsed.TotalMilliseconds / reps;
                Console.WriteLine($"  v{version}  {ms,9:F2} ms  {2.0 * m * n * k / (ms * 1e6),7:F1} GFLOP/s  max rel err {err:G2} {(err < 1e-4 ? "ok" : "WRONG")}");
            }
        }
        return 0;
    }

    static void Run(int version, float[] a, float[] b, float[] c, int m, int n, int k)
    {
        switch (version)
        {
            case 1: Naive(a, b, c, m, n, k); break;
            case 2: RowAxpy(a, b, c, m, n, k); break;
            default:
                fixed (float* pa = a, pb = b, pc = c) CpuGemm.Sgemm(false, false, m, n, k, pa, k, pb, n, pc, n);
                break;
        }
    }

    static void Naive(float[] a, float[] b, float[] c, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
                c[i * n + j] = s;
            }
    }

    static void RowAxpy(float[] a, float[] b, float[] c, int m, int n, int k)
    {
        Parallel.For(0, m, i =>
        {
            var row = c.AsSpan(i * n, n);
            row.Clear();
            for (int p = 0; p < k; p++) TensorPrimitives.MultiplyAdd(b.AsSpan(p * n, n), a[i * k + p], row, row);
        });
    }

    /// <summary>float64 reference for the first rows (enough to catch any tiling mistake on the edges too).</summary>
    static double[] Reference(float[] a, float[] b, int m, int n, int k, int rows)
    {
        var r = new double[rows * n];
        for (int i = 0; i < rows; i++)
            for (int p = 0; p < k; p++)
            {
                double av = a[i * k + p];
                for (int j = 0; j < n; j++) r[i * n + j] += av * b[p * n + j];
            }
        return r;
    }

    static double MaxRelError(float[] c, double[] reference, int n)
    {
        double worst = 0, scale = reference.Max(Math.Abs) + 1e-30;
        for (int i = 0; i < reference.Length; i++) worst = Math.Max(worst, Math.Abs(c[i] - reference[i]) / scale);
        return worst;
    }
}
