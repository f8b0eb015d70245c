namespace Mdm.Kernels;

/// <summary>
/// What a captured graph depends on: a replay is valid only while every tensor it reads or writes is the same storage
/// at the same offset with the same shape and dtype (the graph holds device addresses and launch shapes), and the
/// host settings that shaped the capture (batch, labels, modes) are equal. A caller keeps the key of its graph and
/// captures again when the key of the next call differs (<see cref="Difference"/> says why, for the log line).
/// </summary>
public sealed class GraphKey : IEquatable<GraphKey>
{
    readonly (Storage Storage, long Offset, DType DType, int[] Dims)[] tensors;
    readonly (string Name, string Value)[] settings;

    GraphKey((Storage, long, DType, int[])[] tensors, (string, string)[] settings) { this.tensors = tensors; this.settings = settings; }

    /// <summary>The tensors' identities (storage, offset, dtype, shape) and named host settings, compared by their text
    /// (arrays by their elements).</summary>
    public static GraphKey Of(IEnumerable<Tensor> tensors, params (string Name, object? Value)[] settings) =>
        new(tensors.Select(t => (t.Storage, t.Offset, t.DType, t.Shape)).ToArray(),
            settings.Select(s => (s.Name, Text(s.Value))).ToArray());

    static string Text(object? value) => value switch
    {
        null => "null",
        string s => s,
        System.Collections.IEnumerable items => "[" + string.Join(", ", items.Cast<object?>().Select(Text)) + "]",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>Null when equal, else the first difference in words.</summary>
    public string? Difference(GraphKey other)
    {
        if (tensors.Length != other.tensors.Length) return $"{other.tensors.Length} tensors instead of {tensors.Length}";
        for (int i = 0; i < tensors.Length; i++)
        {
            var (a, b) = (tensors[i], other.tensors[i]);
            if (a.DType != b.DType || !a.Dims.AsSpan().SequenceEqual(b.Dims))
                return $"tensor {i} is {b.DType} {Shape.Format(b.Dims)} instead of {a.DType} {Shape.Format(a.Dims)}";
            if (!ReferenceEquals(a.Storage, b.Storage) || a.Offset != b.Offset) return $"tensor {i} is at another address";
        }
        if (settings.Length != other.settings.Length) return $"{other.settings.Length} settings instead of {settings.Length}";
        for (int i = 0; i < settings.Length; i++)
            if (settings[i] != other.settings[i])
                return $"{other.settings[i].Name} is {other.settings[i].Value} instead of {settings[i].Value}";
        return null;
    }

    public bool Equals(GraphKey? other) => other is not null && Difference(other) is null;
    public override bool Equals(object? obj) => Equals(obj as GraphKey);
    public override int GetHashCode() => HashCode.Combine(tensors.Length, settings.Length, settings.Length > 0 ? settings[0].Value : "");
}
