using System.Diagnostics;
using System.Runtime.Intrinsics;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Lab;

/// <summary>
/// The CPU backend's convolutions at the cpu-demo UNet's shapes (batch 32): forward, input gradient and weight
/// gradient, each timed for about a second and printed as GFLOP/s (2·N·Cout·Ho·Wo·Cin·kh·kw per op) and as a share of
/// the FMA peak measured first. Correctness is the tests' job (ConvOpTests, ConvLargeShapeTests_Cpu).
/// run: dotnet run -c Release --project bench/Mdm.Bench -- lab conv
/// </summary>
public static class ConvLab
{
    static readonly (int N, int Cin, int H, int Cout, int K, int Stride, string What)[] Shapes =
    [
        (32, 16, 32, 16, 3, 1, "outer 32² level"),
        (32, 32, 32, 32, 3, 2, "down-sampling 32² → 16²"),
        (32, 32, 16, 64, 3, 1, "inner 16² level"),
        (32, 64, 16, 32, 1, 1, "1×1 skip at 16²"),
        (32, 64, 8, 64, 3, 1, "inner 8² level (attention level and mid block)"),
    ];

    public static int Run(string[] args)
    {
        double peak = Math.Max(GemmLab.FmaPeak(wide: false), Vector512.IsHardwareAccelerated ? GemmLab.FmaPeak(wide: true) : 0);
        Console.WriteLine($"FMA peak on {Environment.ProcessorCount} cores: {peak:F1} GFLOP/s");
        using var cpu = new CpuBackend();
        // lab conv [index…]: only the shapes with those indices.
        var only = args.Select(int.Parse).ToHashSet();
        foreach (var (n, cin, h, cout, k, stride, what) in Shapes.Where((_, i) => only.Count == 0 || only.Contains(i)))
        {
            int pad = k / 2, ho = (h + 2 * pad - k) / stride + 1;
            double flops = 2.0 * n * cout * ho * ho * cin * k * k;
            using var x = Ops.RandomNormal(cpu.Empty(n, cin, h, h), 1);
            using var w = Ops.RandomNormal(cpu.Empty(cout, cin, k, k), 2);
            using var dy = Ops.RandomNormal(cpu.Empty(n, cout, ho, ho), 3);
            using var y = cpu.Empty(n, cout, ho, ho);
            using var dx = cpu.Empty(x.Shape);
            using var dw = cpu.Empty(w.Shape);
            Console.WriteLine($"{n}×{cin}×{h}² → {cout}, {k}×{k} stride {stride}  ({what}, {flops / 1e9:F2} GFLOP per op)");
            Time("forward", () => Ops.Conv2d(x, w, null, stride, pad, y), flops, peak);
            Time("input gradient", () => Ops.Conv2dBackwardInput(dy, w, x.Shape, stride, pad, dx), flops, peak);
            Time("weight gradient", () => Ops.Conv2dBackwardWeight(dy, x, w.Shape, stride, pad, dw), flops, peak);
        }
        return 0;
    }

    static void Time(string what, Action op, double flops, double peak)
    {
        op();   // warm-up (tiering JIT, pooled buffers)
        using var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        int reps = 0;
        do { op(); reps++; } while (sw.Elapsed.TotalSeconds < 1.0);
        double ms = sw.Elapsed.TotalMilliseconds / reps, gflops = flops / (ms * 1e6);
        process.Refresh();
        // CPU time summed over the cores: on a shared box it tracks the work done, where wall time tracks the load.
        double cpuMs = (process.TotalProcessorTime - cpuBefore).TotalMilliseconds / reps;
        Console.WriteLine($"  {what,-16} {ms,8:F2} ms  {gflops,7:F1} GFLOP/s  {100 * gflops / peak,5:F1} % of peak  {cpuMs,8:F2} CPU ms");
    }
}
