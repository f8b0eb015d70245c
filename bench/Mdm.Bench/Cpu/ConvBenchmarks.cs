using BenchmarkDotNet.Attributes;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// The CPU backend's 3×3 and 1×1 convolutions at the cpu-demo UNet's shapes (batch 32): forward, input gradient,
/// weight gradient. GFLOP/s = 2·N·Cout·Ho·Wo·Cin·kh·kw / time for each of the three.
/// </summary>
public class ConvBenchmarks
{
    readonly CpuBackend cpu = new();
    Tensor x = null!, w = null!, dy = null!, y = null!, dx = null!, dw = null!;
    int stride, pad;

    /// <summary>N×Cin×H×W → Cout, kernel k, stride s: the outer 32² level, its down-sampling conv, the inner 16² level, a 1×1 skip.</summary>
    [Params("32x16x32x32-16k3s1", "32x32x32x32-32k3s2", "32x32x16x16-64k3s1", "32x64x16x16-32k1s1")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('-');
        var d = parts[0].Split('x').Select(int.Parse).ToArray();
        var conv = parts[1].Split('k', 's').Select(int.Parse).ToArray();
        int cout = conv[0], k = conv[1];
        stride = conv[2];
        pad = k / 2;
        int ho = (d[2] + 2 * pad - k) / stride + 1, wo = (d[3] + 2 * pad - k) / stride + 1;
        x = Ops.RandomNormal(cpu.Empty(d), 1);
        w = Ops.RandomNormal(cpu.Empty(cout, d[1], k, k), 2);
        dy = Ops.RandomNormal(cpu.Empty(d[0], cout, ho, wo), 3);
        y = cpu.Empty(d[0], cout, ho, wo);
        dx = cpu.Empty(x.Shape);
        dw = cpu.Empty(w.Shape);
    }

    [Benchmark] public void Forward() => Ops.Conv2d(x, w, null, stride, pad, y);
    [Benchmark] public void BackwardInput() => Ops.Conv2dBackwardInput(dy, w, x.Shape, stride, pad, dx);
    [Benchmark] public void BackwardWeight() => Ops.Conv2dBackwardWeight(dy, x, w.Shape, stride, pad, dw);

    [GlobalCleanup]
    public void Cleanup() { foreach (var t in new[] { x, w, dy, y, dx, dw }) t.Dispose(); }
}
