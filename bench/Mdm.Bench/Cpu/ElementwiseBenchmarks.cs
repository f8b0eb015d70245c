using BenchmarkDotNet.Attributes;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// CPU-backend elementwise and reduction kernels on UNet-like activation sizes.
/// Bandwidth: bytes moved / time, e.g. Add reads 2N and writes N floats = 12N bytes.
/// </summary>
[MemoryDiagnoser]
public class ElementwiseBenchmarks
{
    readonly CpuBackend cpu = new();
    Tensor a = null!, b = null!, bias = null!, y = null!, s = null!;

    /// <summary>N, C, H, W of the activation: batch 16 at 32² (the CPU demo) and a 64² width-128 layer.</summary>
    [Params("16x64x32x32", "4x128x64x64")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x').Select(int.Parse).ToArray();
        a = Ops.RandomNormal(cpu.Empty(dims), 1);
        b = Ops.RandomNormal(cpu.Empty(dims), 2);
        bias = Ops.RandomNormal(cpu.Empty(1, dims[1], 1, 1), 3);
        y = cpu.Empty(dims);
        s = cpu.Empty(dims[1]);
    }

    [Benchmark] public void Add() => Ops.Add(a, b, y);
    [Benchmark] public void AddBias() => Ops.Add(a, bias, y);
    [Benchmark] public void SiluForward() => Ops.Silu(a, y);
    [Benchmark] public void SiluBackward() => Ops.SiluBackward(a, b, y);
    [Benchmark] public void SumOverNHW() => Ops.Sum(a, [0, 2, 3], keepDims: false, s);

    [GlobalCleanup]
    public void Cleanup() { a.Dispose(); b.Dispose(); bias.Dispose(); y.Dispose(); s.Dispose(); }
}
