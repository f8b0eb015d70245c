namespace Mdm.Kernels.Gpu.Graphs;

/// <summary>
/// What the caching allocator does with its blocks while a CUDA graph is captured. A replayed graph writes and reads
/// the very addresses it was captured with, so every block freed inside the capture stays the graph's until the graph
/// is disposed (<see cref="Held"/>); inside the capture such blocks are handed out again (the captured work runs in
/// order, as it would eagerly). A block that would need a new device allocation cannot be captured
/// (<see cref="GraphCaptureException"/>: warm the allocator up with an eager run first), and a block taken inside the
/// capture but still in use when it ends (<see cref="Escaped"/>) would be written by every replay behind its owner's
/// back, so the capture is given up.
/// </summary>
public sealed class CaptureMemory<TBlock> where TBlock : class
{
    readonly Dictionary<long, Stack<TBlock>> reusable = new();
    readonly HashSet<TBlock> held = new(ReferenceEqualityComparer.Instance);
    readonly List<(TBlock Block, long Size)> heldInOrder = new();
    readonly HashSet<TBlock> outstanding = new(ReferenceEqualityComparer.Instance);

    /// <summary>A block freed earlier in this capture, of exactly this size, or null.</summary>
    public TBlock? TryReuse(long size)
    {
        if (!reusable.TryGetValue(size, out var stack) || stack.Count == 0) return null;
        var block = stack.Pop();
        outstanding.Add(block);
        return block;
    }

    /// <summary>Records a block taken from the allocator's shared free list during the capture.</summary>
    public void Took(TBlock block) => outstanding.Add(block);

    /// <summary>A block freed during the capture: the graph keeps it; later work in the capture may reuse it.</summary>
    public void Returned(TBlock block, long size)
    {
        outstanding.Remove(block);
        if (held.Add(block)) heldInOrder.Add((block, size));
        if (!reusable.TryGetValue(size, out var stack)) reusable[size] = stack = new();
        stack.Push(block);
    }

    /// <summary>Every block the graph owns (freed inside the capture), with its size, in the order they were freed.</summary>
    public IReadOnlyList<(TBlock Block, long Size)> Held => heldInOrder;

    /// <summary>Blocks taken inside the capture and not freed by its end.</summary>
    public int Escaped => outstanding.Count;
}

/// <summary>Raised inside a captured region for work a CUDA graph cannot hold (a host read, a device allocation, a
/// synchronisation); the capture is given up and the caller runs the work eagerly.</summary>
public sealed class GraphCaptureException(string message) : InvalidOperationException(message);
