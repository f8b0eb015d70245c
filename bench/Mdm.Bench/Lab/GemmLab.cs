using System.Runtime.Intrinsics;
using System.Diagnostics;
using System.Numerics.Tensors;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Lab;

/// <summary>
/// Kernel lab: CPU SGEMM, C[M,N] = A[M,K]·B[K,N] (row-major), in the llm.c manner — versions side by side, naive
/// first, each checked against a float64 reference and timed. The winner is promoted into src/Mdm.Kernels/Cpu/CpuGemm.cs.
///   v1  naive i-j-k loops                                        (the yardstick)
///   v2  row axpy: C[i,:] += A[i,p]·B[p,:] with TensorPrimitives   (CpuGemm before 2026-11-27: memory-bound, B streamed M times)
///   v3  packed, register-tiled 4×32 FMA micro-kernel (256-bit), K and N blocked for L2, rows split over cores
///   v4  v3 with an 8×32 micro-kernel in sixteen 512-bit accumulators where AVX-512 is there (CpuGemm.UseVector512,
///       the default on such CPUs)
///   v5  v4 with both operands packed per K chunk where B's rows lie CpuGemm.PackMinRowStride floats apart or more
///       (CpuGemm.PackOperands, promoted: the default): B into 32-wide micro-panels read from L1 by every 8-row block,
///       A into 8-row micro-panels; K split into equal chunks; panels widened when that evens the cores' shares.
///       Unpacked, B's rows at N = 16384 lie 64 KiB apart, so a K chunk maps onto the same few L1 sets and pages.
///       Closer rows (the square and weight-gradient shapes here, the gathered convolution) keep v4
/// run: dotnet run -c Release --project bench/Mdm.Bench -- lab gemm [version]
/// Peak: measured first, FMA chains on every core (sixteen independent accumulators, so latency is hidden) with
/// 256-bit and 512-bit vectors; every version prints its share of the larger of the two. FLOPs = 2·M·N·K. On a shared
/// box, read the CPU-time columns: GFLOP per CPU-second of the GEMM against the same for one thread's FMA chains.
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
        double peak256 = FmaPeak(wide: false), peak512 = Vector512.IsHardwareAccelerated ? FmaPeak(wide: true) : 0;
        double peak = Math.Max(peak256, peak512);
        double corePeak = CorePeak(wide: Vector512.IsHardwareAccelerated);
        Console.WriteLine($"FMA peak on {Environment.ProcessorCount} cores: {peak256:F1} GFLOP/s with Vector256, " +
            (peak512 > 0 ? $"{peak512:F1} GFLOP/s with Vector512" : "no Vector512") + $"; {corePeak:F1} GFLOP per CPU-second");
        foreach (var (m, n, k, what) in Shapes)
        {
            var rng = new Random(1);
            var a = new float[m * k]; var b = new float[k * n];
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
            for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
            var reference = Reference(a, b, m, n, k, rows: Math.Min(m, 8));
            Console.WriteLine($"{m}×{n}×{k}  ({what})");
            for (int version = 1; version <= 5; version++)
            {
                if (only != 0 && version != only) continue;
                if (version == 1 && (long)m * n * k > 300_000_000L) { Console.WriteLine("  v1  skipped (too slow at this size)"); continue; }
                var c = new float[m * n];
                Run(version, a, b, c, m, n, k);   // warm-up (tiering JIT)
                double err = MaxRelError(c, reference, n);
                using var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                int reps = 0;
                do { Run(version, a, b, c, m, n, k); reps++; } while (sw.Elapsed.TotalSeconds < 1.0);
                double ms = sw.Elapsed.TotalMilliseconds / reps;
                process.Refresh();
                double cpuMs = (process.TotalProcessorTime - cpu0).TotalMilliseconds / reps;
                double gflops = 2.0 * m * n * k / (ms * 1e6);
                // Per CPU-second: on a shared box the wall time counts other processes' turns, the CPU time does not.
                double perCore = 2.0 * m * n * k / (cpuMs * 1e6);
                Console.WriteLine($"  v{version}  {ms,9:F2} ms  {gflops,7:F1} GFLOP/s  {100 * gflops / peak,5:F1} % of peak  " +
                    $"{perCore,6:F1} GFLOP per CPU-s  {100 * perCore / corePeak,5:F1} % of the CPU-time peak  max rel err {err:G2} {(err < 1e-4 ? "ok" : "WRONG")}");
            }
        }
        return 0;
    }

    /// <summary>GFLOP/s of independent FMA chains on every core (best of three runs of about half a second).</summary>
    internal static double FmaPeak(bool wide)
    {
        const long Iterations = 2_000_000;
        double best = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            var sw = Stopwatch.StartNew();
            var sink = new float[Environment.ProcessorCount];
            Parallel.For(0, Environment.ProcessorCount, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                core => sink[core] = wide ? Chains<Lanes512, Vector512<float>>(Iterations) : Chains<Lanes256, Vector256<float>>(Iterations));
            double flops = Environment.ProcessorCount * (double)Iterations * 16 * 2 * (wide ? 16 : 8);
            best = Math.Max(best, flops / (sw.Elapsed.TotalSeconds * 1e9));
        }
        return best;
    }

    /// <summary>GFLOP per CPU-second of the FMA chains on one thread: on a shared box the wall-time peak drops with the
    /// load, this one does not (much), so it is the yardstick for the per-CPU-second column.</summary>
    static double CorePeak(bool wide)
    {
        const long Iterations = 2_000_000;
        double best = 0;
        using var process = Process.GetCurrentProcess();
        for (int rep = 0; rep < 3; rep++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            float sink = wide ? Chains<Lanes512, Vector512<float>>(Iterations) : Chains<Lanes256, Vector256<float>>(Iterations);
            process.Refresh();
            double seconds = (process.TotalProcessorTime - cpu0).TotalSeconds;
            if (seconds > 0 && !float.IsNaN(sink)) best = Math.Max(best, Iterations * 16.0 * 2 * (wide ? 16 : 8) / (seconds * 1e9));
        }
        return best;
    }

    interface ILanes<TV>
    {
        static abstract TV Splat(float value);
        static abstract TV Fma(TV a, TV b, TV c);
        static abstract float Sum(TV v);
    }

    struct Lanes256 : ILanes<Vector256<float>>
    {
        public static Vector256<float> Splat(float value) => Vector256.Create(value);
        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
        public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    }

    struct Lanes512 : ILanes<Vector512<float>>
    {
        public static Vector512<float> Splat(float value) => Vector512.Create(value);
        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
        public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    }

    /// <summary>n iterations of sixteen independent FMA chains (enough to hide the FMA latency on both pipes).</summary>
    static float Chains<L, TV>(long n) where L : ILanes<TV>
    {
        TV x = L.Splat(0.999999f), y = L.Splat(1e-7f);
        TV a0 = y, a1 = y, a2 = y, a3 = y, a4 = y, a5 = y, a6 = y, a7 = y, a8 = y, a9 = y, a10 = y, a11 = y, a12 = y, a13 = y, a14 = y, a15 = y;
        for (long i = 0; i < n; i++)
        {
            a0 = L.Fma(a0, x, y); a1 = L.Fma(a1, x, y); a2 = L.Fma(a2, x, y); a3 = L.Fma(a3, x, y);
            a4 = L.Fma(a4, x, y); a5 = L.Fma(a5, x, y); a6 = L.Fma(a6, x, y); a7 = L.Fma(a7, x, y);
            a8 = L.Fma(a8, x, y); a9 = L.Fma(a9, x, y); a10 = L.Fma(a10, x, y); a11 = L.Fma(a11, x, y);
            a12 = L.Fma(a12, x, y); a13 = L.Fma(a13, x, y); a14 = L.Fma(a14, x, y); a15 = L.Fma(a15, x, y);
        }
        return L.Sum(a0) + L.Sum(a1) + L.Sum(a2) + L.Sum(a3) + L.Sum(a4) + L.Sum(a5) + L.Sum(a6) + L.Sum(a7)
             + L.Sum(a8) + L.Sum(a9) + L.Sum(a10) + L.Sum(a11) + L.Sum(a12) + L.Sum(a13) + L.Sum(a14) + L.Sum(a15);
    }

    static void Run(int version, float[] a, float[] b, float[] c, int m, int n, int k)
    {
        switch (version)
        {
            case 1: Naive(a, b, c, m, n, k); break;
            case 2: RowAxpy(a, b, c, m, n, k); break;
            default:
                bool wide = CpuGemm.UseVector512, packed = CpuGemm.PackOperands;
                CpuGemm.UseVector512 = version >= 4;
                CpuGemm.PackOperands = version >= 5;
                try { fixed (float* pa = a, pb = b, pc = c) CpuGemm.Sgemm(false, false, m, n, k, pa, k, pb, n, pc, n); }
                finally { CpuGemm.UseVector512 = wide; CpuGemm.PackOperands = packed; }
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
