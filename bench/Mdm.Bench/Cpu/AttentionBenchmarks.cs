using BenchmarkDotNet.Attributes;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// The CPU backend's flash-style attention, forward and backward: the cpu-demo's attention (batch 32, 8 heads of
/// dimension 8 over 8×8 = 64 tokens) and a model-sized head (8 heads of 64 over 256 tokens, several blocks per head).
/// FLOPs 4·B·H·Nq·Nk·D forward, 10·B·H·Nq·Nk·D backward.
/// </summary>
public class AttentionBenchmarks
{
    readonly CpuBackend cpu = new();
    Tensor q = null!, k = null!, v = null!, o = null!, lse = null!, dO = null!, dq = null!, dk = null!, dv = null!;

    /// <summary>B×H×N×D.</summary>
    [Params("32x8x64x8", "1x8x256x64")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        q = Ops.RandomNormal(cpu.Empty(s), 1);
        k = Ops.RandomNormal(cpu.Empty(s), 2);
        v = Ops.RandomNormal(cpu.Empty(s), 3);
        dO = Ops.RandomNormal(cpu.Empty(s), 4);
        (o, lse) = Ops.Attention(q, k, v, null);
        dq = cpu.Empty(s);
        dk = cpu.Empty(s);
        dv = cpu.Empty(s);
    }

    [Benchmark] public void Forward() => Ops.Attention(q, k, v, null, o, lse);
    [Benchmark] public void Backward() => Ops.AttentionBackward(q, k, v, o, lse, dO, null, dq, dk, dv);

    [GlobalCleanup]
    public void Cleanup() { foreach (var t in new[] { q, k, v, o, lse, dO, dq, dk, dv }) t.Dispose(); }
}
