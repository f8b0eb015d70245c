using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

/// <summary>Thrown when the device cannot hold a tensor even after the cache was emptied.</summary>
public sealed class DeviceOutOfMemoryException(string message, long requestedBytes, Exception? inner)
    : InvalidOperationException(message, inner)
{
    public long RequestedBytes { get; } = requestedBytes;
}

/// <summary>
/// Size-class caching allocator over ILGPU buffers. ILGPU's Allocate1D is a synchronous cuMemAlloc per call, far too
/// slow per tensor, so freed blocks go back to a free list keyed by their rounded size and are handed out again.
/// All work runs on one stream, so a block reused by a later kernel is ordered after the kernels that used it before.
/// </summary>
public sealed class CachingAllocator : IDisposable
{
    readonly Accelerator accelerator;
    readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> free = new();
    readonly object gate = new();
    long live, cached, peak, deviceAllocations;
    Graphs.CaptureMemory<MemoryBuffer1D<byte, Stride1D.Dense>>? capture;

    public CachingAllocator(Accelerator accelerator) { this.accelerator = accelerator; }

    /// <summary>Small blocks round up to 512 B, medium to 64 KiB, large to 2 MiB, so similar sizes share a free list.</summary>
    public static long RoundSize(long bytes) =>
        bytes <= 1 << 20 ? Align(Math.Max(bytes, 512), 512) :
        bytes <= 32L << 20 ? Align(bytes, 64 << 10) : Align(bytes, 2L << 20);

    static long Align(long v, long a) => (v + a - 1) / a * a;

    public MemoryStats Stats { get { lock (gate) return new MemoryStats(live, cached, peak, deviceAllocations); } }

    public void ResetPeak() { lock (gate) peak = live; }

    public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
    {
        long size = RoundSize(bytes);
        lock (gate)
        {
            if (capture?.TryReuse(size) is { } reused) return reused;
            if (free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                cached -= size;
                Track(size);
                var block = stack.Pop();
                capture?.Took(block);
                return block;
            }
            if (capture is not null)
                throw new Graphs.GraphCaptureException($"a device allocation of {bytes:N0} bytes inside the captured region (no free block of {size:N0} bytes: run the work once eagerly first)");
        }
        MemoryBuffer1D<byte, Stride1D.Dense> buffer;
        try { buffer = accelerator.Allocate1D<byte>(size); }
        catch (Exception first) when (first is not DeviceOutOfMemoryException)
        {
            // Out of memory (or fragmentation): give every cached block back to the driver and try once more.
            EmptyCache();
            try { buffer = accelerator.Allocate1D<byte>(size); }
            catch (Exception second)
            {
                var s = Stats;
                throw new DeviceOutOfMemoryException(
                    $"{accelerator.Name}: out of device memory allocating {bytes:N0} bytes ({bytes / 1048576.0:F1} MiB); " +
                    $"{s.LiveBytes / 1048576.0:F1} MiB are in live tensors of {accelerator.MemorySize / 1048576.0:F0} MiB on the device. " +
                    $"Reduce the batch size or the model width. ({second.Message})", bytes, second);
            }
        }
        lock (gate) { deviceAllocations++; Track(size); }
        return buffer;
    }

    void Track(long size)
    {
        live += size;
        if (live > peak) peak = live;
    }

    public void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer)
    {
        lock (gate)
        {
            long size = buffer.Length;
            if (capture is not null) { capture.Returned(buffer, size); return; }
            live -= size;
            cached += size;
            if (!free.TryGetValue(size, out var stack)) free[size] = stack = new();
            stack.Push(buffer);
        }
    }

    /// <summary>Routes frees to a graph's own blocks and refuses device allocations until <see cref="EndCapture"/>.</summary>
    public Graphs.CaptureMemory<MemoryBuffer1D<byte, Stride1D.Dense>> BeginCapture()
    {
        lock (gate) return capture = new();
    }

    public void EndCapture() { lock (gate) capture = null; }

    /// <summary>A disposed graph's blocks go back to the shared free lists.</summary>
    public void Release(IEnumerable<MemoryBuffer1D<byte, Stride1D.Dense>> blocks)
    {
        foreach (var block in blocks) Return(block);
    }

    /// <summary>Frees every cached (unused) block back to the device.</summary>
    public void EmptyCache()
    {
        lock (gate)
        {
            accelerator.Synchronize();
            foreach (var stack in free.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            cached = 0;
        }
    }

    public void Dispose() => EmptyCache();
}
