using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// Saves and loads named tensors (a <see cref="Module"/>'s parameters, EMA weights, optimiser moments) as safetensors,
/// keyed by the module's hierarchical names. Loading copies into the existing tensors on their backend; the
/// in-memory master weights stay F32 whatever dtype the file uses.
/// </summary>
public static class StateDict
{
    public static IEnumerable<(string Name, Tensor Value)> Tensors(Module module) =>
        module.NamedParameters().Select(p => (p.Name, p.Value.Data));

    /// <summary>Adds the module's parameters as <c>{prefix}{name}</c>, stored as F32 or BF16.</summary>
    public static SafeTensorsWriter Add(SafeTensorsWriter writer, Module module, string prefix = "", SafeTensorsDType dtype = SafeTensorsDType.F32) =>
        Add(writer, Tensors(module), prefix, dtype);

    public static SafeTensorsWriter Add(SafeTensorsWriter writer, IEnumerable<(string Name, Tensor Value)> tensors, string prefix = "",
        SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        foreach (var (name, value) in tensors) writer.Add(prefix + name, value, dtype);
        return writer;
    }

    /// <summary>Writes the module's parameters to a file atomically.</summary>
    public static void Save(Module module, string path, SafeTensorsDType dtype = SafeTensorsDType.F32,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var writer = Add(new SafeTensorsWriter(), module, "", dtype);
        if (metadata is not null) foreach (var (k, v) in metadata) writer.Metadata[k] = v;
        writer.Save(path);
    }

    public static StateDictLoadReport Load(Module module, string path, StateDictLoadOptions? options = null)
    {
        using var file = SafeTensorsFile.Open(path);
        return Load(module, file, options);
    }

    public static StateDictLoadReport Load(Module module, SafeTensorsFile file, StateDictLoadOptions? options = null) =>
        Load(Tensors(module), file, options);

    /// <summary>
    /// Matches file keys (minus <see cref="StateDictLoadOptions.SourcePrefix"/>) to target names (minus
    /// <see cref="StateDictLoadOptions.TargetPrefix"/>) and copies matching tensors, converting the file's dtype.
    /// </summary>
    public static StateDictLoadReport Load(IEnumerable<(string Name, Tensor Value)> targets, SafeTensorsFile file, StateDictLoadOptions? options = null)
    {
        options ??= StateDictLoadOptions.Default;
        var wanted = new Dictionary<string, (string Name, Tensor Value)>(StringComparer.Ordinal);
        foreach (var (name, value) in targets)
        {
            if (!name.StartsWith(options.TargetPrefix, StringComparison.Ordinal)) continue;
            if (!wanted.TryAdd(name[options.TargetPrefix.Length..], (name, value)))
                throw new ArgumentException($"StateDict.Load: two targets named '{name}'");
        }
        var available = file.Entries.Where(e => e.Name.StartsWith(options.SourcePrefix, StringComparison.Ordinal))
            .ToDictionary(e => e.Name[options.SourcePrefix.Length..], StringComparer.Ordinal);

        var toLoad = new List<(SafeTensorsEntry Entry, Tensor Target)>();
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        foreach (var (key, (_, tensor)) in wanted)
        {
            if (!available.TryGetValue(key, out var entry)) missing.Add($"{options.SourcePrefix}{key} {tensor.ShapeString}");
            else if (!entry.HasShape(tensor.Dims)) mismatched.Add(new(entry.Name, $"{entry.DType.Name()} {entry.ShapeString}", tensor.ShapeString));
            else toLoad.Add((entry, tensor));
        }
        var unexpected = available.Where(kv => !wanted.ContainsKey(kv.Key))
            .Select(kv => $"{kv.Value.Name} {kv.Value.DType.Name()} {kv.Value.ShapeString}").ToList();
        var report = new StateDictLoadReport(file.DisplayName, toLoad.Select(l => l.Entry.Name).ToList(), missing, unexpected, mismatched);
        if (options.Strict && !report.IsComplete) throw new StateDictMismatchException(report);
        foreach (var (entry, target) in toLoad) file.ReadInto(entry.Name, target);
        if (toLoad.Count > 0) MixedPrecision.MasterWeightsChanged();
        return report;
    }
}
