using System.Globalization;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// A checkpoint written by <see cref="CheckpointWriter"/>: its step, metadata and tensor groups, loaded on demand.
/// Any other safetensors file opens too (step 0, no groups) so its tensors can still be loaded with a prefix of "".
/// </summary>
public sealed class CheckpointReader : IDisposable
{
    CheckpointReader(SafeTensorsFile file)
    {
        File = file;
        var meta = file.Metadata;
        if (meta.TryGetValue(Checkpoint.StepKey, out var s))
            Step = long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long step) ? step
                : throw new CheckpointFormatException(file.DisplayName, $"metadata '{Checkpoint.StepKey}' is '{s}', not a step number");
        Groups = meta.TryGetValue(Checkpoint.GroupsKey, out var g) && g.Length > 0 ? g.Split(',') : [];
        foreach (var group in Groups)
            if (!Checkpoint.GroupName().IsMatch(group))
                throw new CheckpointFormatException(file.DisplayName, $"metadata '{Checkpoint.GroupsKey}' names an invalid group '{group}'");
    }

    public SafeTensorsFile File { get; }
    public string Path => File.DisplayName;
    public long Step { get; }
    public IReadOnlyList<string> Groups { get; }
    /// <summary>Every metadata entry, the reserved <c>mdm.*</c> keys included.</summary>
    public IReadOnlyDictionary<string, string> Metadata => File.Metadata;

    /// <summary>Opens a checkpoint and, when it carries a checksum, verifies its data against it.</summary>
    public static CheckpointReader Open(string path)
    {
        var file = SafeTensorsFile.Open(path);
        try
        {
            var reader = new CheckpointReader(file);
            reader.VerifyChecksum();
            return reader;
        }
        catch { file.Dispose(); throw; }
    }

    void VerifyChecksum()
    {
        if (!Metadata.TryGetValue(Checkpoint.ChecksumKey, out var expected)) return;
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        stream.Position = File.DataStart;
        var buffer = new byte[1 << 20];
        uint crc = 0;
        for (int n; (n = stream.Read(buffer)) > 0;) crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
        var actual = crc.ToString("x8", CultureInfo.InvariantCulture);
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new CheckpointFormatException(Path, $"checksum mismatch: the data's CRC-32C is {actual} but the header says {expected} (the file is corrupt)");
    }

    /// <summary>The newest checkpoint in a folder, or null when there is none.</summary>
    public static CheckpointReader? OpenLatest(string folder, string prefix = "checkpoint")
    {
        var all = CheckpointWriter.List(folder, prefix);
        return all.Count == 0 ? null : Open(all[^1].Path);
    }

    public string? GetMetadata(string key) => Metadata.TryGetValue(key, out var v) ? v : null;

    public bool HasGroup(string group) => Groups.Contains(group);

    /// <summary>Names in a group, without the group prefix.</summary>
    public IEnumerable<string> Names(string group) => File.Names.Where(n => n.StartsWith(GroupPrefix(group), StringComparison.Ordinal))
        .Select(n => n[(group.Length + 1)..]);

    /// <summary>Loads a group into a module (options' SourcePrefix applies inside the group).</summary>
    public StateDictLoadReport LoadModule(string group, Module module, StateDictLoadOptions? options = null) =>
        LoadTensors(group, StateDict.Tensors(module), options);

    public StateDictLoadReport LoadTensors(string group, IEnumerable<(string Name, Tensor Value)> targets, StateDictLoadOptions? options = null)
    {
        options ??= StateDictLoadOptions.Default;
        return StateDict.Load(targets, File, options with { SourcePrefix = GroupPrefix(group) + options.SourcePrefix });
    }

    public float[] ReadF32(string group, string name) => File.ReadF32(GroupPrefix(group) + name);
    public long[] ReadInt64(string group, string name) => File.ReadInt64(GroupPrefix(group) + name);

    string GroupPrefix(string group) => HasGroup(group) ? group + "."
        : throw new KeyNotFoundException($"{Path}: no group '{group}' (groups: {(Groups.Count == 0 ? "none" : string.Join(", ", Groups))})");

    public void Dispose() => File.Dispose();
}
