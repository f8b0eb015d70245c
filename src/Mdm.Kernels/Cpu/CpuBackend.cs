using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Mdm.Kernels.Cpu;

/// <summary>Host memory: a pinned byte array (kernels may hold raw pointers) from the backend's pool.</summary>
sealed class CpuStorage : Storage
{
    readonly CpuBackend owner;
    public byte[] Data;
    public CpuStorage(CpuBackend owner, long bytes) : base(bytes)
    {
        if (bytes > Array.MaxLength) throw new ArgumentException($"CPU backend: one tensor of {bytes} bytes exceeds the {Array.MaxLength}-byte array limit");
        this.owner = owner;
        Data = owner.Arrays.Rent(bytes);
        owner.OnAllocate(bytes);
    }
    protected override void Release()
    {
        owner.OnRelease(Bytes);
        owner.Arrays.Return(Data);
        Data = [];
    }
}

/// <summary>
/// The CPU backend: System.Numerics.Tensors (SIMD) on contiguous rows, Parallel.For over rows where work is large.
/// This is the real path on machines without a GPU; the float64 reference in the tests is the yardstick.
/// </summary>
public sealed partial class CpuBackend : Backend
{
    long live, peak;
    readonly DeviceInfo info;
    /// <summary>Released tensor arrays for reuse, up to a quarter of the memory the runtime may use.</summary>
    internal readonly CpuArrayPool Arrays = new(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    public CpuBackend()
    {
        info = new DeviceInfo(BackendKind.Cpu, CpuName(), GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, Environment.ProcessorCount,
            $"System.Numerics.Tensors, {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated switch { true => "AVX-512", false => System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "SSE" }}");
    }

    public override BackendKind Kind => BackendKind.Cpu;
    public override DeviceInfo Info => info;
    public override MemoryStats Memory => new(Interlocked.Read(ref live), Arrays.CachedBytes, Interlocked.Read(ref peak), Arrays.FreshAllocations);
    /// <summary>Drops the cached arrays (the GC reclaims them).</summary>
    public void EmptyCache() => Arrays.Clear();
    public override void ResetPeakMemory() => Interlocked.Exchange(ref peak, Interlocked.Read(ref live));
    public override void Synchronize() { }
    public override void Dispose() { }

    internal void OnAllocate(long bytes)
    {
        long now = Interlocked.Add(ref live, bytes);
        long p;
        while (now > (p = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, p) != p) { }
    }
    internal void OnRelease(long bytes) => Interlocked.Add(ref live, -bytes);

    static string CpuName()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { } catch (UnauthorizedAccessException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }

    // ---- spans over tensors -------------------------------------------------------------------------------------
    internal static Span<float> F32(Tensor t) =>
        MemoryMarshal.Cast<byte, float>(((CpuStorage)t.Storage).Data.AsSpan()).Slice((int)t.Offset, (int)t.Numel);
    internal static Span<ushort> U16(Tensor t) =>
        MemoryMarshal.Cast<byte, ushort>(((CpuStorage)t.Storage).Data.AsSpan()).Slice((int)t.Offset, (int)t.Numel);
    /// <summary>Elements [start, start + count) of a BF16 tensor widened into the front of <paramref name="buffer"/>.</summary>
    internal static Span<float> Widened(Tensor x, int start, int count, float[] buffer)
    {
        var wide = buffer.AsSpan(0, count);
        BFloat16.ToFloat(U16(x).Slice(start, count), wide);
        return wide;
    }
    /// <summary>Address of element 0 (storage is pinned, so the pointer stays valid while the tensor lives).</summary>
    internal static unsafe float* Ptr(Tensor t) =>
        (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(((CpuStorage)t.Storage).Data)) + t.Offset;
    /// <summary>Address of element 0 of a BF16 tensor, as <see cref="Ptr"/>.</summary>
    internal static unsafe ushort* PtrU16(Tensor t) =>
        (ushort*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(((CpuStorage)t.Storage).Data)) + t.Offset;

    static Span<byte> Raw(Tensor t) =>
        ((CpuStorage)t.Storage).Data.AsSpan((int)(t.Offset * t.DType.Size()), (int)t.Bytes);

    protected internal override Storage AllocateStorage(long bytes) => new CpuStorage(this, bytes);
    protected internal override void Upload(Tensor dst, ReadOnlySpan<byte> src) => src.CopyTo(Raw(dst));
    protected internal override void Download(Tensor src, Span<byte> dst) => Raw(src).CopyTo(dst);

    /// <summary>Run body(start, end) over [0, n) in chunks, in parallel only when the work is worth a thread hop.</summary>
    public static void ParallelRange(int n, long costPerItem, Action<int, int> body)
    {
        const long minWorkPerChunk = 1 << 15;
        int workers = Environment.ProcessorCount;
        if (n <= 1 || workers == 1 || n * costPerItem < 2 * minWorkPerChunk) { body(0, n); return; }
        int chunks = (int)Math.Min(Math.Min(n, workers * 4L), n * costPerItem / minWorkPerChunk);
        Parallel.For(0, chunks, c => body((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks)));
    }
}
