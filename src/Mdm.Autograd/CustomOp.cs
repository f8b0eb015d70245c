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

    CustomOp(string name, ForwardFn forward, BackwardFn backward) { Name = name; Forward = forward; BackwardRule = backward; }

    public string Name { get; }
    public ForwardFn Forward { get; }
    public BackwardFn BackwardRule { get; }

    public static IReadOnlyCollection<CustomOp> Registered { get { lock (registry) return registry.Values.ToList(); } }

    /// <summary>Register (or replace) an op by name.</summary>
    public static CustomOp Register(string name, ForwardFn forward, BackwardFn backward)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("CustomOp.Register: the op needs a name");
        var op = new CustomOp(name, forward, backward);
        lock (registry) registry[name] = op;
        return op;
    }

    public Variable Apply(object? attributes, params Variable[] inputs)
    {
        if (inputs.Length == 0) throw new ArgumentException($"{Name}: a custom op needs at least one input");
        var (output, saved) = Forward(inputs.Select(v => v.Data).ToArray(), attributes);
        return Record.Op(Name, output, inputs, attributes, saved, savesOutput: false, custom: this);
    }

    public Variable Apply(params Variable[] inputs) => Apply(null, inputs);

    internal Tensor?[] RunBackward(Node node, Tensor g)
    {
        var ctx = new CustomContext(node.Inputs.Select(v => v.Data).ToArray(), node.Saved,
            node.Inputs.Select(v => v.RequiresGrad).ToArray(), node.Attributes);
        var grads = BackwardRule(ctx, g);
        if (grads.Length != node.Inputs.Length)
            throw new InvalidOperationException($"{Name}: backward returned {grads.Length} gradients for {node.Inputs.Length} inputs");
        return grads;
    }
}
