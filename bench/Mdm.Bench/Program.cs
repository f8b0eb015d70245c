using BenchmarkDotNet.Running;
using Mdm.Bench.Gpu;

namespace Mdm.Bench;

/// <summary>
/// `dotnet run -c Release --project bench/Mdm.Bench` runs the BenchmarkDotNet suite of the CPU backend
/// (BenchmarkDotNet arguments such as --filter '*Silu*' --job short pass through).
/// `... -- gpu [--device cuda|ilgpu-cpu] [--quick] [--json FILE]` times the ILGPU kernels with device events
/// and writes one JSON line per (op, shape), the input of scripts/gpu/compare.py.
/// `... -- tune [--device cuda|ilgpu-cpu] [--quick] [--out DIR]` checks and times every kernel variant per shape class
/// of the configs and writes a new tuning table (DIR/tuning.json) and its timings (DIR/tune.md); see Gpu/TuneBench.cs.
/// `... -- lab gemm [version]` runs the CPU GEMM kernel lab (numbered versions, checked and timed; see Lab/).
/// `... -- lab conv` times the CPU convolutions (forward, input and weight gradients) at the cpu-demo shapes.
/// `... -- lab attention [--ptx DIR]` runs the GPU attention lab (v1 SIMT vs v2 tensor cores) on CUDA.
/// `... -- lab groupnorm [--device cuda|ilgpu-cpu]` runs the fused GroupNorm lab (v1 three sweeps vs v2 one-pass stats).
/// `... -- ptx --out DIR` writes the PTX of every catalogued kernel for sm_90 (no GPU needed) plus a manifest with each
/// kernel's SASS budget, the input of scripts/sass-audit.py.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gpu") return GpuBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "tune") return TuneBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "ptx") return PtxDump.Run(args[1..]);
        if (args.Length > 0 && args[0] == "step") return TrainStepBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "sample") return SampleBench.Run(args[1..]);
        if (args.Length > 1 && args[0] == "lab" && args[1] == "gemm") return Lab.GemmLab.Run(args[2..]);
        if (args.Length > 1 && args[0] == "lab" && args[1] == "conv") return Lab.ConvLab.Run(args[2..]);
        if (args.Length > 1 && args[0] == "lab" && args[1] == "attention") return Lab.AttentionLab.Run(args[2..]);
        if (args.Length > 1 && args[0] == "lab" && args[1] == "groupnorm") return Lab.GroupNormLab.Run(args[2..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
