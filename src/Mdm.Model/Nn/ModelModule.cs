using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>How a parameter starts (PyTorch's defaults, or the zero-initialised layers of ml-mdm §1.9).</summary>
public enum ParameterInit
{
    /// <summary>kaiming_uniform_(a=√5) over <see cref="ParameterSpec.FanIn"/>: U(±1/√fan_in).</summary>
    KaimingUniform,
    /// <summary>Linear/Conv bias default: U(±1/√fan_in).</summary>
    BiasUniform,
    Zeros,
    Ones,
}

/// <summary>A declared parameter: its full dotted name (a state-dict key), shape and initialiser.</summary>
public sealed record ParameterSpec(string Name, int[] Shape, ParameterInit Init, int FanIn)
{
    public long Numel => Shape.Aggregate(1L, (a, d) => a * d);
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {Init}";
}

/// <summary>A declared parameter: its spec, and its variable where the module was built on a backend.</summary>
public sealed class DeclaredParameter
{
    readonly Variable? variable;

    internal DeclaredParameter(ParameterSpec spec, Variable? variable) { Spec = spec; this.variable = variable; }

    public ParameterSpec Spec { get; }

    /// <summary>The parameter; a module built to count parameters (shapes only) has none and says so.</summary>
    public Variable Value => variable
        ?? throw new InvalidOperationException($"{Spec.Name}: this module was built to count parameters (shapes only) and holds no tensors");
}

/// <summary>
/// Where a module's parameters come from: tensors on a backend, or nothing at all (<see cref="ShapesOnly"/>), so
/// the parameter count of a 1.9 GB model comes from the very construction code that builds it, without allocating.
/// </summary>
public sealed class ParameterFactory
{
    ParameterFactory(Backend? backend) { Backend = backend; }

    public static ParameterFactory On(Backend backend) => new(backend ?? throw new ArgumentNullException(nameof(backend)));

    /// <summary>Records shapes and names only; modules built this way cannot run forward.</summary>
    public static ParameterFactory ShapesOnly { get; } = new(null);

    public Backend? Backend { get; }
    public bool Allocates => Backend is not null;
}

/// <summary>
/// Base of the model's modules: parameters are declared with a shape and an initialiser, registered under their
/// ml-mdm names, and initialised once the whole tree exists (<see cref="Initialize"/>), from a Philox stream keyed by
/// the full parameter name, so values do not depend on construction order or backend.
/// </summary>
public abstract class ModelModule : Module
{
    readonly List<ParameterSpec> specs = new();

    protected ModelModule(ParameterFactory factory) { Factory = factory; }

    protected ParameterFactory Factory { get; }

    /// <summary>Declares a parameter; allocates it (uninitialised) unless the factory records shapes only, in which
    /// case the declaration holds the spec alone and the module can only be inspected.</summary>
    protected DeclaredParameter Declare(string name, ParameterInit init, int fanIn, params int[] shape)
    {
        var spec = new ParameterSpec(name, (int[])shape.Clone(), init, fanIn);
        specs.Add(spec);
        return new DeclaredParameter(spec, Factory.Backend is { } b ? Parameter(name, b.Empty(shape)) : null);
    }

    /// <summary>Every declared parameter with its full name, in <see cref="Module.NamedParameters"/> order.</summary>
    public IEnumerable<ParameterSpec> ParameterSpecs(string prefix = "")
    {
        foreach (var s in specs) yield return s with { Name = prefix + s.Name };
        foreach (var (name, child) in NamedChildren())
            if (child is ModelModule m)
                foreach (var s in m.ParameterSpecs(prefix + name + "."))
                    yield return s;
    }

    /// <summary>Fills every parameter per its spec: Philox (seed, hash of the full name).</summary>
    public void Initialize(ulong seed)
    {
        if (!Factory.Allocates) throw new InvalidOperationException($"{GetType().Name}: built to record shapes only; nothing to initialise");
        var byName = NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        foreach (var s in ParameterSpecs())
        {
            var t = byName[s.Name].Data;
            switch (s.Init)
            {
                case ParameterInit.KaimingUniform: Init.KaimingUniform(t, s.FanIn, seed, s.Name); break;
                case ParameterInit.BiasUniform: Init.BiasUniform(t, s.FanIn, seed, s.Name); break;
                case ParameterInit.Zeros: Init.Zeros(t); break;
                case ParameterInit.Ones: Init.Ones(t); break;
            }
        }
    }

    protected void RequireAllocated()
    {
        if (!Factory.Allocates)
            throw new InvalidOperationException($"{GetType().Name}: this module was built to count parameters (shapes only) and cannot run");
    }
}

/// <summary>A named list or dictionary of modules (torch's ModuleList / ModuleDict: keys "0", "1", … or names).</summary>
public sealed class ModuleGroup(ParameterFactory factory) : ModelModule(factory)
{
    public T Add<T>(string name, T module) where T : Module => Child(name, module);
}
