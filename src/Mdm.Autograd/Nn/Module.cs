using Mdm.Kernels;

namespace Mdm.Autograd.Nn;

/// <summary>
/// A layer or model: named parameters and named child modules, giving stable hierarchical names
/// (<c>down_blocks.0.resnets.1.conv1.weight</c>) that become state-dict / safetensors keys.
/// </summary>
public abstract class Module
{
    readonly List<(string Name, Variable Value)> parameters = new();
    readonly List<(string Name, Module Value)> children = new();

    public bool Training { get; private set; } = true;

    protected Variable Parameter(string name, Tensor value)
    {
        CheckName(name);
        var p = new Variable(value, requiresGrad: true, name);
        parameters.Add((name, p));
        return p;
    }

    /// <summary>For helpers that declare a module's parameters on its behalf.</summary>

    protected T Child<T>(string name, T module) where T : Module
    {
        CheckName(name);
        children.Add((name, module));
        return module;
    }

    void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"{GetType().Name}: invalid member name '{name}' (non-empty, no dots)");
        if (parameters.Any(p => p.Name == name) || children.Any(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name}: member '{name}' registered twice");
    }

    /// <summary>All parameters with their full dotted names, depth first in registration order.</summary>
    public IEnumerable<(string Name, Variable Value)> NamedParameters(string prefix = "")
    {
        foreach (var (n, p) in parameters) yield return (prefix + n, p);
        foreach (var (n, c) in children)
            foreach (var item in c.NamedParameters(prefix + n + "."))
                yield return item;
    }

    public IEnumerable<Variable> Parameters() => NamedParameters().Select(p => p.Value);

    public IEnumerable<(string Name, Module Value)> NamedChildren() => children;

    public long ParameterCount => Parameters().Sum(p => p.Data.Numel);

    public void Train(bool training = true)
    {
        Training = training;
        foreach (var (_, c) in children) c.Train(training);
    }

    public void Eval() => Train(false);

    public void ZeroGrad() { foreach (var p in Parameters()) p.ZeroGrad(); }

    /// <summary>Frees every parameter (and gradient) of this module tree.</summary>
    public void DisposeParameters() { foreach (var p in Parameters()) p.Dispose(); }
}
