using System.Globalization;
using System.Text.RegularExpressions;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// Writes <c>{folder}/{prefix}-{step:D9}.safetensors</c> atomically (temp file, fsync, rename) and keeps the newest
/// <see cref="KeepLast"/> checkpoints, deleting older ones only once the new file is in place. A crash at any point
/// leaves every previous checkpoint intact; at worst a hidden <c>.…tmp</c> file remains, removed by the next save.
/// </summary>
public sealed class CheckpointWriter
{
    public CheckpointWriter(string folder, string prefix = "checkpoint", int keepLast = 3)
    {
        if (keepLast < 1) throw new ArgumentOutOfRangeException(nameof(keepLast), keepLast, "CheckpointWriter: keep at least 1 checkpoint");
        if (!Checkpoint.GroupName().IsMatch(prefix))
            throw new ArgumentException($"CheckpointWriter: prefix '{prefix}' must be letters, digits, '_' or '-'");
        Folder = Path.GetFullPath(folder); Prefix = prefix; KeepLast = keepLast;
    }

    public string Folder { get; }
    public string Prefix { get; }
    public int KeepLast { get; }
    /// <summary>Optional wrapper around the output stream (progress, hashing, failure injection in tests).</summary>
    public Func<Stream, Stream>? WrapOutput { get; init; }

    public string PathFor(long step) => Path.Combine(Folder, $"{Prefix}-{step.ToString("D9", CultureInfo.InvariantCulture)}.safetensors");

    /// <summary>Writes the checkpoint, then prunes old ones; returns its path. Saving a step again replaces it.</summary>
    public string Save(Checkpoint checkpoint)
    {
        var writer = checkpoint.Build();
        string path = PathFor(checkpoint.Step);
        AtomicFile.Write(path, writer.WriteTo, WrapOutput);
        Prune(path);
        return path;
    }

    /// <summary>Keeps the new file plus the newest KeepLast-1 others (by step), even if the new step is not the highest,
    /// and removes temp files a killed earlier writer left behind for this prefix (the new checkpoint is complete by now).</summary>
    void Prune(string justWritten)
    {
        var others = List(Folder, Prefix).Where(c => !string.Equals(c.Path, justWritten, StringComparison.Ordinal)).ToList();
        foreach (var (_, path) in others.Take(Math.Max(0, others.Count - (KeepLast - 1))))
            File.Delete(path);
        var stale = new Regex($"^\\.{Regex.Escape(Prefix)}-\\d+\\.safetensors\\.[0-9a-f]+{Regex.Escape(AtomicFile.TempSuffix)}$");
        foreach (var path in Directory.EnumerateFiles(Folder).Where(p => stale.IsMatch(Path.GetFileName(p))).ToList())
            File.Delete(path);
    }

    /// <summary>The checkpoints in a folder, oldest step first.</summary>
    public static IReadOnlyList<(long Step, string Path)> List(string folder, string prefix = "checkpoint")
    {
        if (!Directory.Exists(folder)) return [];
        var pattern = new Regex($"^{Regex.Escape(prefix)}-(\\d+)\\.safetensors$");
        var found = new List<(long Step, string Path)>();
        foreach (var path in Directory.EnumerateFiles(folder))
        {
            var m = pattern.Match(Path.GetFileName(path));
            if (m.Success && long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                found.Add((step, Path.GetFullPath(path)));
        }
        found.Sort((a, b) => a.Step.CompareTo(b.Step));
        return found;
    }
}
