using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>What a custom op's forward hands to its backward.</summary>
public sealed class CustomContext
{
    internal CustomContext(Tensor[] inputs, Tensor[] saved, bool[] needsGrad, object? attributes)
    { Inputs = inputs; Saved = saved; NeedsGrad = needsGrad; Attributes = attributes; }
    public Tensor[] Inputs { get; }
    /// <summary>Tensors the forward chose to save (freed by the engine right after backward).</summary>
    public Tensor[] Saved { get; }
    public bool[] NeedsGrad { get; }
    public object? Attributes { get; }
}

/// <summary>Everything one registration says about a custom op.</summary>
public sealed record CustomOpDefinition(string Name, CustomOp.ForwardFn Forward, CustomOp.BackwardFn Backward)
{
    /// <summary>Float64 reference forward over the inputs as double arrays (row-major) with their shapes.</summary>
    public Func<double[][], int[][], object?, double[]>? Reference { get; init; }
    /// <summary>Small input shapes for the gradient check (odd sizes are best).</summary>
    public int[][]? CheckShapes { get; init; }
    /// <summary>Input shapes for the benchmark suite.</summary>
    public int[][]? BenchShapes { get; init; }
    /// <summary>Attributes passed to forward/reference in checks and benchmarks.</summary>
    public object? Attributes { get; init; }
}

/// <summary>
/// A researcher's op: a forward (any kernels or CPU code producing an output and optional saved tensors) and a
/// backward (gradient of each input from the output gradient). Registering it gives it autograd; see
/// docs/custom-ops.md for gradcheck and benchmarking from the same registration.
/// </summary>
public sealed class CustomOp
{
    public delegate (Tensor Output, Tensor[] Saved) ForwardFn(Tensor[] inputs, object? attributes);
    public delegate Tensor?[] BackwardFn(CustomContext context, Tensor gradOutput);

    static readonly Dictionary<string, CustomOp> registry = new();

    CustomOp(CustomOpDefinition d) { Definition = d; }

    public CustomOpDefinition Definition { get; }
    public string Name => Definition.Name;
    public ForwardFn Forward => Definition.Forward;
    public BackwardFn BackwardRule => Definition.Backward;

    public static IReadOnlyCollection<CustomOp> Registered { get { lock (registry) return registry.Values.ToList(); } }

    /// <summary>Register (or replace) an op by name.</summary>
    public static CustomOp Register(string name, ForwardFn forward, BackwardFn backward) =>
        Register(new CustomOpDefinition(name, forward, backward));

    /// <summary>Register (or replace) an op with its reference, check shapes and benchmark shapes.</summary>
    public static CustomOp Register(CustomOpDefinition definition)
    {
        if (string.IsNullOrWhiteSpace(definition.Name)) throw new ArgumentException("CustomOp.Register: the op needs a name");
        var op = new CustomOp(definition);
        lock (registry) registry[definition.Name] = op;
        return op;
    }

    /// <summary>Random inputs (uniform in [-1, 1], Philox) of the given shapes on a backend, all requiring grad.</summary>
    public static Variable[] RandomInputs(Backend backend, int[][] shapes, ulong seed) =>
        shapes.Select((s, i) => new Variable(Ops.RandomUniform(backend.Empty(s), seed, (ulong)i, -1f, 1f), requiresGrad: true)).ToArray();

    /// <summary>The float64 gradient check of this op on <see cref="CustomOpDefinition.CheckShapes"/>.</summary>
    public GradcheckResult Gradcheck(Backend backend, ulong seed = 1, GradcheckOptions? options = null)
    {
        var d = Definition;
        if (d.Reference is null || d.CheckShapes is null)
            throw new InvalidOperationException($"{Name}: registration has no Reference or CheckShapes, so it cannot be gradient-checked");
        var inputs = RandomInputs(backend, d.CheckShapes, seed);
        try
        {
            return Autograd.Gradcheck.CheckAgainstReference(v => Apply(d.Attributes, v), xs => d.Reference(xs, d.CheckShapes, d.Attributes), inputs, options);
        }
        finally { foreach (var v in inputs) v.Dispose(); }
    }

    public Variable Apply(object? attributes, params Variable[] inputs)
    {
        if (inputs.Length == 0) throw new ArgumentException($"{Name}: a custom op needs at least one input");
        var (output, saved) = Forward(inputs.Select(v => v.Data).ToArray(), attributes);
        return Record.Op(Name, output, inputs, (n, g) => RunBackward(n, g, attributes), saved);
    }

    public Variable Apply(params Variable[] inputs) => Apply(null, inputs);

    Tensor?[] RunBackward(Node node, Tensor g, object? attributes)
    {
        var ctx = new CustomContext(node.Inputs.Select(v => v.Data).ToArray(), node.Saved,
            node.Inputs.Select(v => v.RequiresGrad).ToArray(), attributes);
        var grads = BackwardRule(ctx, g);
        if (grads.Length != node.Inputs.Length)
            throw new InvalidOperationException($"{Name}: backward returned {grads.Length} gradients for {node.Inputs.Length} inputs");
        return grads;
    }
}
