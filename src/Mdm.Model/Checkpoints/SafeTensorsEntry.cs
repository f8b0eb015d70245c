namespace Mdm.Model.Checkpoints;

/// <summary>One tensor's header record: dtype, shape, and its byte range [Begin, End) relative to the data start.</summary>
public sealed class SafeTensorsEntry
{
    internal SafeTensorsEntry(string name, SafeTensorsDType dtype, long[] shape, long begin, long end, long numel)
    {
        Name = name; DType = dtype; this.shape = shape; Begin = begin; End = end; Numel = numel;
    }

    readonly long[] shape;

    public string Name { get; }
    public SafeTensorsDType DType { get; }
    public ReadOnlySpan<long> Dims => shape;
    public long[] Shape => (long[])shape.Clone();
    public int Rank => shape.Length;
    public long Begin { get; }
    public long End { get; }
    public long Numel { get; }
    public long ByteCount => End - Begin;
    public string ShapeString => FormatShape(shape);

    /// <summary>True when this entry has exactly the given shape.</summary>
    public bool HasShape(ReadOnlySpan<int> dims)
    {
        if (dims.Length != shape.Length) return false;
        for (int i = 0; i < dims.Length; i++) if (dims[i] != shape[i]) return false;
        return true;
    }

    public override string ToString() => $"'{Name}' {DType.Name()} {ShapeString} [{Begin}, {End})";

    internal static string FormatShape(ReadOnlySpan<long> dims) => "[" + string.Join(",", dims.ToArray()) + "]";
}
