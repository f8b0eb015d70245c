using System.Reflection;
using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// One op, built-in or a researcher's: its name, the shapes its checks and benchmarks use, and (in the typed
/// <see cref="OpDefinition{TAttributes}"/>) forward, backward, float64 reference and attributes. The fixtures,
/// gradcheck, BenchmarkDotNet entry, GPU bench case and test-matrix row all iterate <see cref="Registered"/>.
/// </summary>
public abstract class OpDefinition
{
    static readonly List<OpDefinition> registry = new();

    private protected OpDefinition(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("OpDefinition: the op needs a name");
        Name = name;
    }

    public string Name { get; }
    /// <summary>Small input shapes (odd sizes are best) for the gradient check and the forward check on every backend.</summary>
    public int[][]? CheckShapes { get; init; }
    /// <summary>Input shapes for the benchmark suites.</summary>
    public int[][]? BenchShapes { get; init; }
    /// <summary>The backward reads the op's output (attention): the engine keeps it until then.</summary>
    public bool SavesOutput { get; init; }
    /// <summary>False when the backward reads no input's value (a cast, whose gradient only needs the output's): the
    /// node then keeps no input alive, so an f32 value cast to bf16 can be freed once nothing else needs it.</summary>
    public bool ReadsInputs { get; init; } = true;

    /// <summary>Whether the checks can run: a float64 reference, check shapes and check attributes.</summary>
    public abstract bool Checkable { get; }

    /// <summary>The differentiable op with the check attributes.</summary>
    public abstract Variable ApplyForCheck(params Variable[] inputs);

    /// <summary>The float64 reference forward with the check attributes.</summary>
    public abstract double[] ReferenceForCheck(double[][] inputs, int[][] shapes);

    /// <summary>The forward on tensors of <see cref="CheckShapes"/> with the check attributes (the GPU bench's quick mode).</summary>
    public abstract (Tensor Output, Tensor[] Saved) ForwardForCheck(Tensor[] inputs);

    /// <summary>The forward on tensors of <see cref="BenchShapes"/> with the bench attributes (the GPU bench times this).</summary>
    public abstract (Tensor Output, Tensor[] Saved) ForwardForBench(Tensor[] inputs);

    /// <summary>The differentiable op with the bench attributes (the BenchmarkDotNet entry).</summary>
    public abstract Variable ApplyForBench(params Variable[] inputs);

    static readonly Lazy<bool> discovered = new(DiscoverDefinitions);

    /// <summary>Every registered op, by name: the built-in ones (<see cref="F"/>), every static
    /// <see cref="OpDefinition"/> property or field of the program's assemblies (so a new op needs no list), and any
    /// registered since.</summary>
    public static IReadOnlyList<OpDefinition> Registered
    {
        get
        {
            _ = discovered.Value;
            lock (registry) return registry.OrderBy(d => d.Name, StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Reads each static OpDefinition member once, which runs its registration.</summary>
    static bool DiscoverDefinitions()
    {
        const BindingFlags statics = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var assembly in ProgramAssemblies.Using(typeof(OpDefinition).Assembly))
            foreach (var type in ProgramAssemblies.TypesOf(assembly).Where(t => !t.ContainsGenericParameters))
            {
                foreach (var p in type.GetProperties(statics).Where(p => typeof(OpDefinition).IsAssignableFrom(p.PropertyType) && p.GetIndexParameters().Length == 0))
                    p.GetValue(null);
                foreach (var f in type.GetFields(statics).Where(f => typeof(OpDefinition).IsAssignableFrom(f.FieldType)))
                    f.GetValue(null);
            }
        return true;
    }

    public static OpDefinition Find(string name) =>
        Registered.FirstOrDefault(d => d.Name == name) ?? throw new ArgumentException($"OpDefinition: no op named '{name}' is registered");

    /// <summary>Adds a definition to <see cref="Registered"/>; a name registered twice is refused.</summary>
    public static T Register<T>(T definition) where T : OpDefinition
    {
        lock (registry)
        {
            if (registry.Any(d => d.Name == definition.Name))
                throw new InvalidOperationException($"OpDefinition: an op named '{definition.Name}' is already registered");
            registry.Add(definition);
        }
        return definition;
    }

    /// <summary>Random inputs (uniform in [-1, 1], Philox) of the given shapes on a backend, all requiring grad.</summary>
    public static Variable[] RandomInputs(Backend backend, int[][] shapes, ulong seed) =>
        shapes.Select((s, i) => new Variable(Ops.RandomUniform(backend.Empty(s), seed, (ulong)i, -1f, 1f), requiresGrad: true)).ToArray();

    /// <summary>The float64 gradient check on <see cref="CheckShapes"/> with the check attributes.</summary>
    public GradcheckResult Gradcheck(Backend backend, ulong seed = 1, GradcheckOptions? options = null)
    {
        var shapes = CheckShapes;
        if (!Checkable || shapes is null)
            throw new InvalidOperationException($"{Name}: its definition has no Reference, CheckShapes or CheckAttributes, so it cannot be gradient-checked");
        var inputs = RandomInputs(backend, shapes, seed);
        try
        {
            return Autograd.Gradcheck.CheckAgainstReference(ApplyForCheck, xs => ReferenceForCheck(xs, shapes), inputs, options);
        }
        finally { foreach (var v in inputs) v.Dispose(); }
    }

    public override string ToString() => Name;
}

/// <summary>
/// An op with typed attributes (the non-tensor parameters: groups, stride, eps …). Forward returns the output and
/// the tensors its backward needs; backward gets them with the attributes the op was called with, typed, and returns
/// one gradient per input (null where <see cref="OpContext{TAttributes}.NeedsGrad"/> is false).
/// </summary>
public sealed class OpDefinition<TAttributes> : OpDefinition
{
    public delegate (Tensor Output, Tensor[] Saved) ForwardFn(Tensor[] inputs, TAttributes attributes);
    public delegate Tensor?[] BackwardFn(OpContext<TAttributes> context, Tensor gradOutput);
    public delegate double[] ReferenceFn(double[][] inputs, int[][] shapes, TAttributes attributes);

    public OpDefinition(string name, ForwardFn forward, BackwardFn backward) : base(name)
    {
        Forward = forward; Backward = backward;
    }

    public ForwardFn Forward { get; }
    public BackwardFn Backward { get; }
    /// <summary>Float64 forward over the inputs as row-major double arrays with their shapes: plain loops.</summary>
    public ReferenceFn? Reference { get; init; }
    /// <summary>The attributes the checks call the op with.</summary>
    public TAttributes? CheckAttributes { get; init; }
    /// <summary>The attributes the benchmarks call the op with, where the check attributes do not fit the bench shapes.</summary>
    public TAttributes? BenchAttributes { get; init; }

    public override bool Checkable => Reference is not null && CheckShapes is not null && CheckAttributes is not null;

    public Variable Apply(TAttributes attributes, params Variable[] inputs)
    {
        if (inputs.Length == 0) throw new ArgumentException($"{Name}: an op needs at least one input");
        var (output, saved) = Forward(inputs.Select(v => v.Data).ToArray(), attributes);
        return Record.Op(Name, output, inputs, (node, g) => RunBackward(node, g, attributes), saved, SavesOutput, ReadsInputs);
    }

    Tensor?[] RunBackward(Node node, Tensor g, TAttributes attributes)
    {
        var grads = Backward(new OpContext<TAttributes>(node, attributes), g);
        if (grads.Length != node.Inputs.Length)
            throw new InvalidOperationException($"{Name}: backward returned {grads.Length} gradients for {node.Inputs.Length} inputs");
        return grads;
    }

    TAttributes Checked => CheckAttributes is { } a ? a : throw new InvalidOperationException($"{Name}: its definition has no CheckAttributes");
    TAttributes Benched => BenchAttributes is { } a ? a : Checked;

    public override Variable ApplyForCheck(params Variable[] inputs) => Apply(Checked, inputs);
    public override (Tensor Output, Tensor[] Saved) ForwardForCheck(Tensor[] inputs) => Forward(inputs, Checked);
    public override double[] ReferenceForCheck(double[][] inputs, int[][] shapes) =>
        (Reference ?? throw new InvalidOperationException($"{Name}: its definition has no Reference"))(inputs, shapes, Checked);
    public override (Tensor Output, Tensor[] Saved) ForwardForBench(Tensor[] inputs) => Forward(inputs, Benched);
    public override Variable ApplyForBench(params Variable[] inputs) => Apply(Benched, inputs);
}

/// <summary>The attributes of an op that has none.</summary>
public readonly record struct NoAttributes;

/// <summary>What an op's backward gets: its inputs, the tensors its forward saved, its output, its attributes.</summary>
public sealed class OpContext<TAttributes>
{
    readonly Node node;

    internal OpContext(Node node, TAttributes attributes) { this.node = node; Attributes = attributes; }

    public TAttributes Attributes { get; }
    public int InputCount => node.Inputs.Length;
    public Tensor Input(int i) => node.Input(i);
    public bool NeedsGrad(int i) => node.NeedsGrad(i);
    /// <summary>Tensors the forward chose to save (freed by the engine right after backward).</summary>
    public IReadOnlyList<Tensor> Saved => node.Saved;
    /// <summary>The forward's output; only for a definition with <see cref="OpDefinition.SavesOutput"/>.</summary>
    public Tensor Output => node.SavesOutput ? node.Output.Data
        : throw new InvalidOperationException($"{node.Name}: the backward reads the output, so its definition needs SavesOutput = true");
}
