using BenchmarkDotNet.Attributes;
using Mdm.Autograd;
using Mdm.Autograd.Examples;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// Every registered custom op with benchmark shapes gets a forward and a forward+backward entry here, on the CPU
/// backend — no per-op benchmark code (see docs/custom-ops.md).
/// </summary>
public class CustomOpBenchmarks
{
    static CustomOpBenchmarks() { _ = RmsNorm.Op; }   // the documented example registers itself on first use

    readonly CpuBackend cpu = new();
    Variable[] inputs = [];
    CustomOp op = null!;

    public static IEnumerable<string> OpNames() =>
        CustomOp.Registered.Where(o => o.Definition.BenchShapes is not null).Select(o => o.Name).OrderBy(n => n);

    [ParamsSource(nameof(OpNames))]
    public string Op { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        op = CustomOp.Registered.Single(o => o.Name == Op);
        inputs = CustomOp.RandomInputs(cpu, op.Definition.BenchShapes!, seed: 7);
    }

    [Benchmark]
    public void Forward()
    {
        using (Graph.NoGrad())
        using (new Graph())
            op.Apply(op.Definition.Attributes, inputs);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using (new Graph())
        {
            var y = op.Apply(op.Definition.Attributes, inputs);
            using var seed = cpu.Full(1f, y.Shape);
            y.Backward(seed);
        }
        foreach (var v in inputs) v.ZeroGrad();
    }

    [GlobalCleanup]
    public void Cleanup() { foreach (var v in inputs) v.Dispose(); }
}
