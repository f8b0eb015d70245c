using System.Buffers.Binary;
using System.Text;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// Builds a safetensors file the way the reference writer does: 8-byte little-endian header length, compact UTF-8
/// JSON (<c>__metadata__</c> first, string → string), padded with spaces to a multiple of 8, tensors sorted by dtype
/// alignment (descending) then by name (UTF-8 bytes), data_offsets relative to the data start, dense little-endian data.
/// Device tensors are downloaded one at a time while writing, so saving never holds more than one tensor on the host.
/// </summary>
public sealed class SafeTensorsWriter
{
    readonly List<Pending> tensors = new();
    readonly HashSet<string> names = new(StringComparer.Ordinal);

    /// <summary>The <c>__metadata__</c> map (omitted from the file when empty).</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
    public int Count => tensors.Count;
    public bool Contains(string name) => names.Contains(name);

    /// <summary>Raw little-endian element bytes of any dtype (copied now).</summary>
    public SafeTensorsWriter Add(string name, SafeTensorsDType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> littleEndianData)
    {
        long numel = CheckShape(name, shape);
        if (littleEndianData.Length != numel * dtype.Size())
            throw new ArgumentException($"SafeTensorsWriter: tensor '{name}' {dtype.Name()} {SafeTensorsEntry.FormatShape(shape)} needs {numel * dtype.Size()} bytes, got {littleEndianData.Length}");
        var copy = littleEndianData.ToArray();
        return Register(name, dtype, shape, numel, s => s.Write(copy));
    }

    public SafeTensorsWriter AddF32(string name, ReadOnlySpan<int> shape, ReadOnlySpan<float> values) =>
        AddFloats(name, SafeTensorsDType.F32, shape, values);

    /// <summary>Values rounded to BF16 (nearest, ties to even).</summary>
    public SafeTensorsWriter AddBF16(string name, ReadOnlySpan<int> shape, ReadOnlySpan<float> values) =>
        AddFloats(name, SafeTensorsDType.BF16, shape, values);

    /// <summary>Integers stored as I64 (step counters, RNG state words).</summary>
    public SafeTensorsWriter AddI64(string name, ReadOnlySpan<int> shape, ReadOnlySpan<long> values)
    {
        var bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
        return Add(name, SafeTensorsDType.I64, Widen(shape), bytes);
    }

    /// <summary>
    /// A tensor on any backend, stored as F32 or BF16 (narrowed on its device with <see cref="Ops.ToBF16"/>; the
    /// tensor itself is unchanged). It is read when the file is written, so it must stay alive until then.
    /// </summary>
    public SafeTensorsWriter Add(string name, Tensor tensor, SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        if (dtype is not (SafeTensorsDType.F32 or SafeTensorsDType.BF16))
            throw new ArgumentException($"SafeTensorsWriter: tensor '{name}' can be stored as F32 or BF16, not {dtype.Name()}");
        var shape = Widen(tensor.Dims);
        long numel = CheckShape(name, shape);
        return Register(name, dtype, shape, numel, s => WriteTensor(s, tensor, dtype));
    }

    SafeTensorsWriter AddFloats(string name, SafeTensorsDType dtype, ReadOnlySpan<int> shape, ReadOnlySpan<float> values)
    {
        var wide = Widen(shape);
        long numel = CheckShape(name, wide);
        if (values.Length != numel)
            throw new ArgumentException($"SafeTensorsWriter: tensor '{name}' {SafeTensorsEntry.FormatShape(wide)} has {numel} elements, got {values.Length} values");
        var copy = values.ToArray();
        return Register(name, dtype, wide, numel, s => WriteFloats(s, copy, dtype));
    }

    static long[] Widen(ReadOnlySpan<int> shape)
    {
        var r = new long[shape.Length];
        for (int i = 0; i < shape.Length; i++) r[i] = shape[i];
        return r;
    }

    long CheckShape(string name, ReadOnlySpan<long> shape)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("SafeTensorsWriter: tensor names must be non-empty");
        if (name == SafeTensorsHeader.MetadataKey) throw new ArgumentException($"SafeTensorsWriter: '{name}' is reserved for the metadata map");
        if (names.Contains(name)) throw new ArgumentException($"SafeTensorsWriter: tensor '{name}' added twice");
        long numel = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"SafeTensorsWriter: tensor '{name}' has a negative dimension in {SafeTensorsEntry.FormatShape(shape)}");
            numel = checked(numel * d);
        }
        return numel;
    }

    SafeTensorsWriter Register(string name, SafeTensorsDType dtype, ReadOnlySpan<long> shape, long numel, Action<Stream> write)
    {
        var utf8 = SafeTensorsJson.Utf8(name, "SafeTensorsWriter: tensor name");
        names.Add(name);
        tensors.Add(new Pending(name, utf8, dtype, shape.ToArray(), numel * dtype.Size(), write));
        return this;
    }

    /// <summary>The complete header (length prefix excluded): JSON padded with spaces to a multiple of 8.</summary>
    public byte[] HeaderBytes() => BuildHeader(Ordered());

    /// <summary>Writes the whole file to a stream (which need not be seekable).</summary>
    public void WriteTo(Stream stream)
    {
        var ordered = Ordered();
        var header = BuildHeader(ordered);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        WriteData(stream, ordered);
        stream.Flush();
    }

    /// <summary>Only the data section (what follows the header), e.g. to checksum it before the header is written.</summary>
    public void WriteDataTo(Stream stream) => WriteData(stream, Ordered());

    static void WriteData(Stream stream, List<Pending> ordered)
    {
        foreach (var t in ordered)
        {
            var counter = new CountingStream(stream);
            t.Write(counter);
            if (counter.Written != t.ByteCount)
                throw new InvalidOperationException($"SafeTensorsWriter: tensor '{t.Name}' wrote {counter.Written} bytes, expected {t.ByteCount}");
        }
    }

    /// <summary>The size of the file <see cref="WriteTo"/> writes, in bytes.</summary>
    public long FileLength => 8 + HeaderBytes().Length + tensors.Sum(t => t.ByteCount);

    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>Writes the file to a path atomically (temp file, fsync, rename).</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    List<Pending> Ordered()
    {
        var ordered = tensors.ToList();
        ordered.Sort((a, b) => a.DType != b.DType ? b.DType.CompareTo(a.DType) : a.Utf8Name.AsSpan().SequenceCompareTo(b.Utf8Name));
        return ordered;
    }

    byte[] BuildHeader(List<Pending> ordered)
    {
        var sb = new StringBuilder("{");
        if (Metadata.Count > 0)
        {
            SafeTensorsJson.AppendString(sb, SafeTensorsHeader.MetadataKey);
            sb.Append(":{");
            var keys = Metadata.Keys.Select(k => (Key: k, Utf8: SafeTensorsJson.Utf8(k, "SafeTensorsWriter: metadata key"))).ToList();
            keys.Sort((a, b) => a.Utf8.AsSpan().SequenceCompareTo(b.Utf8));
            for (int i = 0; i < keys.Count; i++)
            {
                if (i > 0) sb.Append(',');
                string value = Metadata[keys[i].Key] ?? throw new ArgumentException($"SafeTensorsWriter: metadata '{keys[i].Key}' is null");
                SafeTensorsJson.Utf8(value, $"SafeTensorsWriter: metadata value of '{keys[i].Key}'");
                SafeTensorsJson.AppendString(sb, keys[i].Key);
                sb.Append(':');
                SafeTensorsJson.AppendString(sb, value);
            }
            sb.Append('}');
        }
        long offset = 0;
        foreach (var t in ordered)
        {
            if (sb.Length > 1) sb.Append(',');
            SafeTensorsJson.AppendString(sb, t.Name);
            sb.Append(":{\"dtype\":");
            SafeTensorsJson.AppendString(sb, t.DType.Name());
            sb.Append(",\"shape\":");
            SafeTensorsJson.AppendIntegers(sb, t.Shape);
            sb.Append(",\"data_offsets\":");
            SafeTensorsJson.AppendIntegers(sb, [offset, offset + t.ByteCount]);
            sb.Append('}');
            offset += t.ByteCount;
        }
        sb.Append('}');
        var json = Encoding.UTF8.GetBytes(sb.ToString());
        int padded = (json.Length + 7) / 8 * 8;
        if (padded > SafeTensorsFile.MaxHeaderBytes)
            throw new InvalidOperationException($"SafeTensorsWriter: header of {padded} bytes exceeds the {SafeTensorsFile.MaxHeaderBytes}-byte limit");
        var header = new byte[padded];
        json.CopyTo(header, 0);
        header.AsSpan(json.Length).Fill((byte)' ');
        return header;
    }

    const int ChunkElements = 16384;

    static void WriteFloats(Stream s, ReadOnlySpan<float> values, SafeTensorsDType dtype)
    {
        int size = dtype.Size();
        var buffer = new byte[Math.Min(values.Length, ChunkElements) * size];
        for (int start = 0; start < values.Length; start += ChunkElements)
        {
            var chunk = values.Slice(start, Math.Min(ChunkElements, values.Length - start));
            for (int i = 0; i < chunk.Length; i++)
                if (dtype == SafeTensorsDType.F32) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), chunk[i]);
                else BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(i * 2), BFloat16.FromFloat(chunk[i]));
            s.Write(buffer, 0, chunk.Length * size);
        }
    }

    static void WriteBits(Stream s, ReadOnlySpan<ushort> bits)
    {
        var buffer = new byte[Math.Min(bits.Length, ChunkElements) * 2];
        for (int start = 0; start < bits.Length; start += ChunkElements)
        {
            var chunk = bits.Slice(start, Math.Min(ChunkElements, bits.Length - start));
            for (int i = 0; i < chunk.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(i * 2), chunk[i]);
            s.Write(buffer, 0, chunk.Length * 2);
        }
    }

    static void WriteTensor(Stream s, Tensor tensor, SafeTensorsDType dtype)
    {
        if (tensor.Numel == 0) return;
        if (dtype == SafeTensorsDType.F32) { WriteFloats(s, tensor.ToArray(), dtype); return; }
        if (tensor.DType == DType.BF16) { WriteBits(s, tensor.ToBF16Bits()); return; }
        using var narrowed = Ops.ToBF16(tensor);   // on the tensor's device: only half the bytes cross to the host
        WriteBits(s, narrowed.ToBF16Bits());
    }

    sealed record Pending(string Name, byte[] Utf8Name, SafeTensorsDType DType, long[] Shape, long ByteCount, Action<Stream> Write);

    /// <summary>Counts what a tensor writes, so a tensor whose size changed after it was added is caught.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Written += count; }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Written += buffer.Length; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
