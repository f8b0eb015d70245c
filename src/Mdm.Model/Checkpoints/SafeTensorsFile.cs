using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// A safetensors file opened for reading. Opening reads and validates only the header (8-byte little-endian length,
/// JSON, the data layout); tensors are read one at a time by name, so a large file never has to fit in memory.
/// Not thread-safe for concurrent reads beyond the internal lock that serialises seeks.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>The reference implementation's limit on the JSON header (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly Stream stream;
    readonly bool leaveOpen;
    readonly Dictionary<string, SafeTensorsEntry> byName;
    readonly object gate = new();
    bool disposed;

    SafeTensorsFile(Stream stream, bool leaveOpen, string displayName, List<SafeTensorsEntry> entries,
        Dictionary<string, string> metadata, long dataStart, long headerBytes)
    {
        this.stream = stream; this.leaveOpen = leaveOpen;
        DisplayName = displayName; Entries = entries; Metadata = metadata; DataStart = dataStart; HeaderBytes = headerBytes;
        byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>How the file is named in error messages (the path given to <see cref="Open"/>).</summary>
    public string DisplayName { get; }
    /// <summary>Tensors in file order (by data offset).</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IEnumerable<string> Names => Entries.Select(e => e.Name);
    /// <summary>The length N of the JSON header (including padding).</summary>
    public long HeaderBytes { get; }
    /// <summary>File offset of the data buffer: 8 + N.</summary>
    public long DataStart { get; }

    public static SafeTensorsFile Open(string path)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        try { return Read(fs, path, leaveOpen: false); }
        catch { fs.Dispose(); throw; }
    }

    /// <summary>Reads the header of a seekable stream holding a safetensors file; <paramref name="displayName"/> names it in errors.</summary>
    public static SafeTensorsFile Read(Stream stream, string displayName, bool leaveOpen = false)
    {
        if (!stream.CanSeek || !stream.CanRead) throw new ArgumentException($"{displayName}: a safetensors stream must be readable and seekable");
        long length = stream.Length;
        stream.Position = 0;
        if (length < 8) throw new CheckpointFormatException(displayName, $"file truncated: {length} bytes, shorter than the 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw new CheckpointFormatException(displayName, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (corrupt length, or not a safetensors file)");
        if (8 + (long)n > length)
            throw new CheckpointFormatException(displayName, $"file truncated: header length is {n} bytes but only {length - 8} bytes follow the length field");
        var json = new byte[n];
        stream.ReadExactly(json);
        var (entries, metadata) = SafeTensorsHeader.Parse(displayName, json);
        long dataStart = 8 + (long)n;
        ValidateLayout(displayName, entries, length - dataStart);
        return new SafeTensorsFile(stream, leaveOpen, displayName, entries, metadata, dataStart, (long)n);
    }

    /// <summary>Byte counts match dtype·shape; ranges tile [0, data length) with no hole or overlap. Sorts entries by offset.</summary>
    static void ValidateLayout(string file, List<SafeTensorsEntry> entries, long dataLength)
    {
        foreach (var e in entries)
        {
            if (e.End < e.Begin)
                throw new CheckpointFormatException(file, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] end before they begin");
            long need = e.Numel * e.DType.Size();
            if (e.ByteCount != need)
                throw new CheckpointFormatException(file,
                    $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] hold {e.ByteCount} bytes but {e.DType.Name()} {e.ShapeString} needs {need}");
        }
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in entries)
        {
            if (e.Begin > expected)
                throw new CheckpointFormatException(file, $"data bytes [{expected}, {e.Begin}) belong to no tensor (hole before '{e.Name}' at [{e.Begin}, {e.End}])");
            if (e.Begin < expected)
                throw new CheckpointFormatException(file, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] overlap '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            expected = e.End;
            previous = e;
        }
        if (expected > dataLength)
            throw new CheckpointFormatException(file, $"file truncated: the tensors need {expected} data bytes but only {dataLength} are present");
        if (expected < dataLength)
            throw new CheckpointFormatException(file, $"data section holds {dataLength} bytes but the tensors cover only {expected} (trailing bytes)");
    }

    public bool Contains(string name) => byName.ContainsKey(name);

    public SafeTensorsEntry Entry(string name) => byName.TryGetValue(name, out var e) ? e
        : throw new KeyNotFoundException($"{DisplayName}: no tensor named '{name}' ({Entries.Count} tensors{Nearby(name)})");

    string Nearby(string name)
    {
        var similar = Entries.Select(e => e.Name).Where(n => n.EndsWith(name, StringComparison.Ordinal) || name.EndsWith(n, StringComparison.Ordinal)).Take(3).ToList();
        return similar.Count == 0 ? "" : $"; similar: {string.Join(", ", similar.Select(s => $"'{s}'"))}";
    }

    /// <summary>The tensor's raw little-endian bytes.</summary>
    public byte[] ReadBytes(string name)
    {
        var e = Entry(name);
        var bytes = new byte[e.ByteCount];
        ReadRaw(e, bytes);
        return bytes;
    }

    /// <summary>The tensor's values as floats, converted from any dtype.</summary>
    public float[] ReadF32(string name)
    {
        var e = Entry(name);
        var values = new float[CheckedCount(e)];
        ReadF32Into(e, values);
        return values;
    }

    /// <summary>The tensor's values as BF16 bit patterns: BF16 exactly, anything else widened to F32 then rounded to nearest even.</summary>
    public ushort[] ReadBF16Bits(string name)
    {
        var e = Entry(name);
        var bits = new ushort[CheckedCount(e)];
        if (e.DType == SafeTensorsDType.BF16 && BitConverter.IsLittleEndian) { ReadRaw(e, MemoryMarshal.AsBytes(bits.AsSpan())); return bits; }
        var values = new float[bits.Length];
        ReadF32Into(e, values);
        BFloat16.FromFloat(values, bits);
        return bits;
    }

    /// <summary>The values of an integer tensor (BOOL, U8 … I64, U64) as longs, exactly.</summary>
    public long[] ReadInt64(string name)
    {
        var e = Entry(name);
        if (!e.DType.IsInteger()) throw new ArgumentException($"{DisplayName}: tensor '{name}' is {e.DType.Name()}, not an integer dtype");
        var values = new long[CheckedCount(e)];
        var raw = new byte[e.ByteCount];
        ReadRaw(e, raw);
        try { SafeTensorsConvert.ToInt64(e.DType, raw, values); }
        catch (OverflowException) { throw new CheckpointFormatException(DisplayName, $"tensor '{name}' holds a U64 value above 2^63-1"); }
        return values;
    }

    /// <summary>Copies the tensor into an existing tensor of the same shape on any backend, converting the dtype.</summary>
    public void ReadInto(string name, Tensor destination)
    {
        var e = Entry(name);
        if (!e.HasShape(destination.Dims))
            throw new ArgumentException($"{DisplayName}: tensor '{name}' is {e.DType.Name()} {e.ShapeString}, destination is {destination.ShapeString}");
        if (destination.DType == DType.BF16) destination.CopyFrom(ReadBF16Bits(name));
        else destination.CopyFrom(ReadF32(name));
    }

    void ReadF32Into(SafeTensorsEntry e, Span<float> values)
    {
        if (e.DType == SafeTensorsDType.F32 && BitConverter.IsLittleEndian) { ReadRaw(e, MemoryMarshal.AsBytes(values)); return; }
        var raw = new byte[e.ByteCount];
        ReadRaw(e, raw);
        SafeTensorsConvert.ToF32(e.DType, raw, values);
    }

    int CheckedCount(SafeTensorsEntry e) => e.Numel <= Array.MaxLength ? (int)e.Numel
        : throw new NotSupportedException($"{DisplayName}: tensor '{e.Name}' has {e.Numel} elements, more than one array can hold");

    void ReadRaw(SafeTensorsEntry e, Span<byte> destination)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            stream.Position = DataStart + e.Begin;
            try { stream.ReadExactly(destination); }
            catch (EndOfStreamException ex)
            {
                throw new CheckpointFormatException(DisplayName, $"file truncated while reading tensor '{e.Name}' (was it changed after opening?)", ex);
            }
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            if (!leaveOpen) stream.Dispose();
        }
    }
}
