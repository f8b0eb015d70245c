using BenchmarkDotNet.Attributes;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// The CPU backend's SGEMM on UNet shapes, 256-bit (4×32) against 512-bit (8×32) micro-kernels, B read in place
/// against packed where its rows lie far enough apart (the forward shape; the others read B in place either way).
/// GFLOP/s = 2·M·N·K / time; `lab gemm` prints the same as a share of the measured FMA peak.
/// </summary>
public unsafe class GemmBenchmarks
{
    float[] a = [], b = [], c = [];
    int m, n, k;

    /// <summary>M×N×K: a square product, a 3×3 conv 64→64 over a 16×32² batch (forward W·col), its weight gradient.</summary>
    [Params("256x256x256", "64x16384x576", "64x576x16384")]
    public string Shape { get; set; } = "";

    [Params(false, true)]
    public bool Vector512 { get; set; }

    [Params(false, true)]
    public bool Packed { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        (m, n, k) = (d[0], d[1], d[2]);
        var rng = new Random(1);
        a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
        b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray();
        c = new float[m * n];
        CpuGemm.UseVector512 = Vector512 && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        CpuGemm.PackOperands = Packed;
    }

    [Benchmark]
    public void Sgemm()
    {
        fixed (float* pa = a, pb = b, pc = c) CpuGemm.Sgemm(false, false, m, n, k, pa, k, pb, n, pc, n);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CpuGemm.UseVector512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        CpuGemm.PackOperands = true;
    }
}
