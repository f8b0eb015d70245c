namespace Mdm.Kernels.Cpu;

/// <summary>
/// Freed tensor arrays of the CPU backend, kept for reuse. A training step allocates the same sizes every step; fresh
/// pinned arrays would each be mapped page by page by the kernel (minor faults) and later collected, so released
/// arrays go back to a free list keyed by their rounded size (the GPU allocator's size classes) until
/// <see cref="Capacity"/> bytes are cached.
/// </summary>
sealed class CpuArrayPool(long capacity)
{
    readonly Dictionary<long, Stack<byte[]>> free = new();
    readonly object gate = new();
    long cached, fresh;

    public long Capacity { get; } = capacity;
    public long CachedBytes { get { lock (gate) return cached; } }
    /// <summary>Arrays allocated from the runtime (not served from the free list).</summary>
    public long FreshAllocations => Interlocked.Read(ref fresh);

    /// <summary>A pinned array of at least <paramref name="bytes"/> bytes (contents undefined).</summary>
    public byte[] Rent(long bytes)
    {
        long size = Math.Min(Gpu.CachingAllocator.RoundSize(bytes), Array.MaxLength);
        lock (gate)
        {
            if (free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                cached -= size;
                return stack.Pop();
            }
        }
        Interlocked.Increment(ref fresh);
        return GC.AllocateUninitializedArray<byte>((int)size, pinned: true);
    }

    public void Return(byte[] array)
    {
        lock (gate)
        {
            if (cached + array.Length > Capacity) return;   // over the cap: left to the GC
            if (!free.TryGetValue(array.Length, out var stack)) free[array.Length] = stack = new Stack<byte[]>();
            stack.Push(array);
            cached += array.Length;
        }
    }

    public void Clear()
    {
        lock (gate) { free.Clear(); cached = 0; }
    }
}
