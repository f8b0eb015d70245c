using System.Globalization;
using System.Text.RegularExpressions;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// The content of one training checkpoint: named groups of tensors (<c>model</c>, <c>ema</c>, <c>adam_m</c>, …,
/// stored as <c>{group}.{name}</c>) and a string metadata map (config JSON, RNG state, losses). The step and the
/// group list are kept in reserved metadata keys (<c>mdm.step</c>, <c>mdm.groups</c>, <c>mdm.format</c>), with a CRC-32C
/// of the data section (<c>mdm.crc32c</c>) that <see cref="CheckpointReader.Open"/> verifies.
/// Tensors are read when the checkpoint is written, so they must stay alive until then.
/// </summary>
public sealed partial class Checkpoint
{
    public const string FormatVersion = "mdm-checkpoint/1";
    internal const string FormatKey = "mdm.format", StepKey = "mdm.step", GroupsKey = "mdm.groups", ChecksumKey = "mdm.crc32c";

    readonly List<string> groups = new();

    public Checkpoint(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "Checkpoint: the step must be >= 0");
        Step = step;
    }

    public long Step { get; }
    public IReadOnlyList<string> Groups => groups;
    /// <summary>Free-form metadata (keys starting with "mdm." are reserved).</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
    internal SafeTensorsWriter Tensors { get; } = new();
    /// <summary>The file's size in bytes (exact once saved or attempted: the header then holds all metadata).</summary>
    public long FileLength => Tensors.FileLength;

    /// <summary>A module's parameters as group <paramref name="group"/> (F32, or BF16 for a smaller file).</summary>
    public Checkpoint AddModule(string group, Module module, SafeTensorsDType dtype = SafeTensorsDType.F32) =>
        AddTensors(group, StateDict.Tensors(module), dtype);

    public Checkpoint AddTensors(string group, IEnumerable<(string Name, Tensor Value)> tensors, SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        StartGroup(group);
        StateDict.Add(Tensors, tensors, group + ".", dtype);
        return this;
    }

    /// <summary>Integers kept exactly (I64), e.g. per-parameter optimiser step counts.</summary>
    public Checkpoint AddIntegers(string group, IEnumerable<(string Name, long[] Values)> values)
    {
        StartGroup(group);
        foreach (var (name, v) in values) Tensors.AddI64($"{group}.{name}", [v.Length], v);
        return this;
    }

    void StartGroup(string group)
    {
        if (!GroupName().IsMatch(group))
            throw new ArgumentException($"Checkpoint: group name '{group}' must be letters, digits, '_' or '-'");
        if (groups.Contains(group)) throw new ArgumentException($"Checkpoint: group '{group}' added twice");
        groups.Add(group);
    }

    internal SafeTensorsWriter Build()
    {
        foreach (var (k, v) in Metadata)
        {
            if (k.StartsWith("mdm.", StringComparison.Ordinal))
                throw new ArgumentException($"Checkpoint: metadata key '{k}' is reserved (keys starting with 'mdm.')");
            Tensors.Metadata[k] = v;
        }
        Tensors.Metadata[FormatKey] = FormatVersion;
        Tensors.Metadata[StepKey] = Step.ToString(CultureInfo.InvariantCulture);
        Tensors.Metadata[GroupsKey] = string.Join(",", groups);
        // The data is checksummed first (one extra pass) because the header that carries the sum comes before it.
        var crc = new Crc32C.HashingStream();
        Tensors.WriteDataTo(crc);
        Tensors.Metadata[ChecksumKey] = crc.Value.ToString("x8", CultureInfo.InvariantCulture);
        return Tensors;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    internal static partial Regex GroupName();
}
