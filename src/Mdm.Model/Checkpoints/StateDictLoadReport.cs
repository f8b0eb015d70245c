using System.Text;

namespace Mdm.Model.Checkpoints;

/// <summary>How to match a file's tensors to a model's parameters.</summary>
public sealed record StateDictLoadOptions
{
    /// <summary>Strict: any missing, unexpected or mismatched key throws <see cref="StateDictMismatchException"/> and nothing is loaded.
    /// Non-strict: every key whose shape matches is loaded, the rest is reported.</summary>
    public bool Strict { get; init; } = true;
    /// <summary>Consider only file keys starting with this prefix, and match them without it
    /// (e.g. "inner_unet." loads a nested model's inner level into a standalone model).</summary>
    public string SourcePrefix { get; init; } = "";
    /// <summary>Consider only parameters whose names start with this prefix, and match them without it
    /// (e.g. "inner_unet." initialises a nested model's inner level from the previous stage's file).</summary>
    public string TargetPrefix { get; init; } = "";

    public static readonly StateDictLoadOptions Default = new();
    public static readonly StateDictLoadOptions NonStrict = new() { Strict = false };
}

public sealed record ShapeMismatch(string Key, string FileShape, string ModelShape)
{
    public override string ToString() => $"{Key}: file {FileShape}, model {ModelShape}";
}

/// <summary>What a state-dict load matched. Keys are named as in the file (missing ones as they would be).</summary>
public sealed class StateDictLoadReport
{
    internal StateDictLoadReport(string file, IReadOnlyList<string> loaded, IReadOnlyList<string> missing,
        IReadOnlyList<string> unexpected, IReadOnlyList<ShapeMismatch> mismatched)
    {
        File = file; Loaded = loaded; Missing = missing; Unexpected = unexpected; ShapeMismatches = mismatched;
    }

    public string File { get; }
    /// <summary>Keys copied into the model.</summary>
    public IReadOnlyList<string> Loaded { get; }
    /// <summary>Parameters with no tensor in the file, as "key [shape]".</summary>
    public IReadOnlyList<string> Missing { get; }
    /// <summary>File tensors (after prefix filtering) matching no parameter, as "key DTYPE [shape]".</summary>
    public IReadOnlyList<string> Unexpected { get; }
    /// <summary>Keys present in both with different shapes (never loaded).</summary>
    public IReadOnlyList<ShapeMismatch> ShapeMismatches { get; }
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0;

    public override string ToString()
    {
        var sb = new StringBuilder($"{File}: loaded {Loaded.Count} tensors");
        Append(sb, "missing from the file", Missing);
        Append(sb, "unexpected in the file", Unexpected);
        Append(sb, "shape mismatches", ShapeMismatches.Select(m => m.ToString()).ToList());
        return sb.ToString();
    }

    static void Append(StringBuilder sb, string title, IReadOnlyList<string> items)
    {
        if (items.Count == 0) return;
        sb.Append($"\n  {items.Count} {title}:");
        foreach (var item in items.Take(50)) sb.Append("\n    ").Append(item);
        if (items.Count > 50) sb.Append($"\n    … and {items.Count - 50} more");
    }
}

/// <summary>A strict load found missing, unexpected or mismatched keys; nothing was copied.</summary>
public sealed class StateDictMismatchException(StateDictLoadReport report)
    : Exception("strict state-dict load failed, nothing was loaded. " + report)
{
    public StateDictLoadReport Report { get; } = report;
}
