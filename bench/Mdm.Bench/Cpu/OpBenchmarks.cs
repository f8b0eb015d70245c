using BenchmarkDotNet.Attributes;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;

namespace Mdm.Bench.Cpu;

/// <summary>
/// Every registered op definition (built-in or custom) gets a forward and a forward+backward entry here on the CPU
/// backend, at its bench shapes — no per-op benchmark code (see docs/custom-ops.md).
/// </summary>
public class OpBenchmarks
{
    readonly CpuBackend cpu = new();
    Variable[] inputs = [];
    OpDefinition? op;

    public static IEnumerable<string> OpNames() => OpDefinition.Registered.Where(o => o.BenchShapes is not null).Select(o => o.Name);

    [ParamsSource(nameof(OpNames))]
    public string Op { get; set; } = "";

    OpDefinition Definition => op ?? throw new InvalidOperationException("OpBenchmarks: GlobalSetup has not run");

    [GlobalSetup]
    public void Setup()
    {
        op = OpDefinition.Find(Op);
        inputs = OpDefinition.RandomInputs(cpu, op.BenchShapes!, seed: 7);
    }

    [Benchmark]
    public void Forward()
    {
        using (Graph.NoGrad())
        using (new Graph())
            Definition.ApplyForBench(inputs);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using (new Graph())
        {
            var y = Definition.ApplyForBench(inputs);
            using var seed = cpu.Full(1f, y.Shape);
            y.Backward(seed);
        }
        foreach (var v in inputs) v.ZeroGrad();
    }

    [GlobalCleanup]
    public void Cleanup() { foreach (var v in inputs) v.Dispose(); }
}
