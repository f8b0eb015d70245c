namespace Mdm.Kernels;

/// <summary>Bytes held by a backend's allocator.</summary>
public readonly record struct MemoryStats(long LiveBytes, long CachedBytes, long PeakLiveBytes, long DeviceAllocations)
{
    public override string ToString() =>
        $"live {LiveBytes / 1048576.0:F1} MiB, cached {CachedBytes / 1048576.0:F1} MiB, peak {PeakLiveBytes / 1048576.0:F1} MiB, {DeviceAllocations} device allocations";
}

/// <summary>Elementwise binary operations with broadcasting.</summary>
public enum BinaryOp { Add, Sub, Mul }

/// <summary>
/// One engine that runs every op: CPU (TensorPrimitives), CUDA (ILGPU) or ILGPU's CPU accelerator.
/// The kernel entry points below take outputs that are already allocated and are not validated:
/// call them through <see cref="Ops"/>, which checks shapes, dtypes and devices and names the op in its errors.
/// </summary>
public abstract partial class Backend : IDisposable
{
    public abstract BackendKind Kind { get; }

    /// <summary>True where bf16-storage matmuls and convolutions run on tensor cores (CUDA): autocast then hands them
    /// bf16 tensors instead of f32 tensors holding bf16 values. Same values, f32 accumulation either way.</summary>
    public virtual bool HasTensorCores => false;
    public abstract DeviceInfo Info { get; }
    public abstract MemoryStats Memory { get; }

    /// <summary>Starts a new peak: the peak becomes the bytes live now (for per-phase memory reports).</summary>
    public abstract void ResetPeakMemory();

    /// <summary>Largest element count one tensor may have (kernels index with 32-bit ints).</summary>
    public const long MaxElements = int.MaxValue;

    public Tensor Empty(DType dtype, params int[] shape)
    {
        Shape.Validate(shape, "Empty");
        long n = Shape.Numel(shape);
        if (n > MaxElements)
            throw new ArgumentException($"Empty: shape {Shape.Format(shape)} has {n} elements, more than the {MaxElements} one tensor may hold");
        var storage = AllocateStorage(Math.Max(n, 1) * dtype.Size());
        return new Tensor(this, dtype, (int[])shape.Clone(), storage, 0, ownsStorage: true);
    }

    public Tensor Empty(params int[] shape) => Empty(DType.F32, shape);

    public Tensor Full(float value, params int[] shape)
    {
        var t = Empty(DType.F32, shape);
        if (t.Numel > 0) Fill(t, value);
        return t;
    }

    public Tensor Zeros(params int[] shape) => Full(0f, shape);

    public Tensor FromArray(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Empty(DType.F32, shape);
        try { t.CopyFrom(data); } catch { t.Dispose(); throw; }
        return t;
    }

    /// <summary>Host-to-device copies of training batches that overlap the step (see <see cref="BatchUploader"/>).</summary>
    public virtual BatchUploader CreateBatchUploader() => new SynchronousBatchUploader(this);

    /// <summary>Wait for all queued device work (a no-op on the CPU backend).</summary>
    public abstract void Synchronize();

    public abstract void Dispose();

    // ---- memory -----------------------------------------------------------------------------------------------
    protected internal abstract Storage AllocateStorage(long bytes);
    protected internal abstract void Upload(Tensor dst, ReadOnlySpan<byte> src);
    protected internal abstract void Download(Tensor src, Span<byte> dst);

    // ---- kernels (unchecked; see Ops) ---------------------------------------------------------------------------
    protected internal abstract void Fill(Tensor y, float value);
    protected internal abstract void Copy(Tensor x, Tensor y);
    /// <summary>y = a op b, with a and b read through the broadcast plan.</summary>
    protected internal abstract void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, in BroadcastPlan plan);

    /// <summary>y = a + b over one shape: a BF16, b BF16 or F32 (widened exactly), the sum in f32, y BF16 (rounded to
    /// nearest even) when both are BF16, else F32.</summary>
    protected internal abstract void AddWidened(Tensor a, Tensor b, Tensor y);
    /// <summary>y = x read through the plan's 'a' strides (broadcast copy).</summary>
    protected internal abstract void BroadcastTo(Tensor x, Tensor y, in BroadcastPlan plan);
    protected internal abstract void Scale(Tensor x, float alpha, Tensor y);
    protected internal abstract void SiluForward(Tensor x, Tensor y);
    protected internal abstract void SiluBackward(Tensor x, Tensor dy, Tensor dx);
    /// <summary>x viewed as [outer, reduce, inner] summed over the middle axis into y [outer, inner].</summary>
    protected internal abstract void SumAxis(Tensor x, Tensor y, int outer, int reduce, int inner);
    protected internal abstract void ConvertToBF16(Tensor x, Tensor y);
    protected internal abstract void ConvertToF32(Tensor x, Tensor y);

    /// <summary>y = x rounded to bf16, F32 storage. Default: narrow into a temporary, then widen.</summary>
    protected internal virtual void RoundToBF16(Tensor x, Tensor y)
    {
        using var b = Empty(DType.BF16, x.Shape);
        ConvertToBF16(x, b);
        ConvertToF32(b, y);
    }
    /// <summary>Uniform in [lo, hi): Philox stream (seed, subsequence), element i = lane i%4 of block i/4.</summary>
    protected internal abstract void RandomUniform(Tensor y, ulong seed, ulong subsequence, float lo, float hi);
    protected internal abstract void RandomNormal(Tensor y, ulong seed, ulong subsequence, float mean, float std, ulong firstBlock);
}
