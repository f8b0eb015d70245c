using System.Runtime.InteropServices;

namespace Mdm.Kernels;

/// <summary>Device memory owned by one backend. Disposing returns it to the backend (the CUDA pool keeps it for reuse).</summary>
public abstract class Storage : IDisposable
{
    protected Storage(long bytes) { Bytes = bytes; }
    public long Bytes { get; }
    public bool IsDisposed { get; private set; }
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
    }
    protected abstract void Release();
}

/// <summary>
/// A contiguous row-major tensor (NCHW for images) on one backend. A tensor either owns its storage or is a view
/// (a reshape, or a slice along the first axis) that borrows it; disposing a view frees nothing.
/// Host data moves only through the explicit copy methods.
/// </summary>
public sealed class Tensor : IDisposable
{
    readonly int[] shape;
    readonly bool ownsStorage;

    internal Tensor(Backend backend, DType dtype, int[] shape, Storage storage, long offset, bool ownsStorage)
    {
        Backend = backend; DType = dtype; this.shape = shape; Storage = storage; Offset = offset; this.ownsStorage = ownsStorage;
        Numel = Kernels.Shape.Numel(shape);
    }

    public Backend Backend { get; }
    public DType DType { get; }
    /// <summary>The shape (a copy; tensors are never reshaped in place).</summary>
    public int[] Shape => (int[])shape.Clone();
    public ReadOnlySpan<int> Dims => shape;
    public int Rank => shape.Length;
    public int Dim(int axis) => shape[axis < 0 ? axis + shape.Length : axis];
    public long Numel { get; }
    public long Bytes => Numel * DType.Size();
    public Storage Storage { get; }
    /// <summary>Offset of element 0 into the storage, in elements.</summary>
    public long Offset { get; }
    public bool IsView => !ownsStorage;
    public bool IsDisposed => Storage.IsDisposed;

    public override string ToString() => $"Tensor{Kernels.Shape.Format(shape)} {DType.Name()} on {Backend.Info.KindName}";
    public string ShapeString => Kernels.Shape.Format(shape);

    /// <summary>A view with another shape of the same element count.</summary>
    public Tensor Reshape(params int[] newShape)
    {
        Kernels.Shape.Validate(newShape, "Reshape");
        if (Kernels.Shape.Numel(newShape) != Numel)
            throw new ArgumentException($"Reshape: cannot view {ShapeString} ({Numel} elements) as {Kernels.Shape.Format(newShape)}");
        return new Tensor(Backend, DType, (int[])newShape.Clone(), Storage, Offset, ownsStorage: false);
    }

    /// <summary>A view of rows [start, start+count) along the first axis.</summary>
    public Tensor Slice(int start, int count)
    {
        if (Rank == 0) throw new ArgumentException("Slice: a scalar tensor has no first axis");
        if (start < 0 || count < 0 || start + count > shape[0])
            throw new ArgumentException($"Slice: rows [{start}, {start + count}) out of range for shape {ShapeString}");
        var s = (int[])shape.Clone();
        s[0] = count;
        long rowElems = shape[0] == 0 ? 0 : Numel / shape[0];
        return new Tensor(Backend, DType, s, Storage, Offset + start * rowElems, ownsStorage: false);
    }

    // ---- host copies -------------------------------------------------------------------------------------------

    public void CopyFrom(ReadOnlySpan<float> data)
    {
        RequireDType(DType.F32, "CopyFrom(float)");
        RequireLength(data.Length, "CopyFrom(float)");
        Backend.Upload(this, MemoryMarshal.AsBytes(data));
    }

    public void CopyFrom(ReadOnlySpan<ushort> bf16Bits)
    {
        RequireDType(DType.BF16, "CopyFrom(bf16 bits)");
        RequireLength(bf16Bits.Length, "CopyFrom(bf16 bits)");
        Backend.Upload(this, MemoryMarshal.AsBytes(bf16Bits));
    }

    public void CopyTo(Span<float> data)
    {
        RequireDType(DType.F32, "CopyTo(float)");
        RequireLength(data.Length, "CopyTo(float)");
        Backend.Download(this, MemoryMarshal.AsBytes(data));
    }

    public void CopyTo(Span<ushort> bits)
    {
        RequireDType(DType.BF16, "CopyTo(bf16 bits)");
        RequireLength(bits.Length, "CopyTo(bf16 bits)");
        Backend.Download(this, MemoryMarshal.AsBytes(bits));
    }

    /// <summary>The values as floats (BF16 is widened exactly).</summary>
    public float[] ToArray()
    {
        var r = new float[Numel];
        if (DType == DType.F32) { CopyTo(r); return r; }
        var bits = new ushort[Numel];
        CopyTo(bits);
        BFloat16.ToFloat(bits, r);
        return r;
    }

    public ushort[] ToBF16Bits()
    {
        RequireDType(DType.BF16, "ToBF16Bits");
        var r = new ushort[Numel];
        CopyTo(r);
        return r;
    }

    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item: tensor {ShapeString} has {Numel} elements, not 1");
        return ToArray()[0];
    }

    void RequireDType(DType dtype, string op)
    {
        if (DType != dtype) throw new ArgumentException($"{op}: tensor {ShapeString} is {DType.Name()}, expected {dtype.Name()}");
        ObjectDisposedException.ThrowIf(IsDisposed, this);
    }

    void RequireLength(int length, string op)
    {
        if (length != Numel) throw new ArgumentException($"{op}: host buffer has {length} elements, tensor {ShapeString} has {Numel}");
    }

    public void Dispose()
    {
        if (ownsStorage) Storage.Dispose();
    }
}
