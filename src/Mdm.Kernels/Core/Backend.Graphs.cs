using System.Runtime.InteropServices;

namespace Mdm.Kernels;

/// <summary>Device work recorded once (a CUDA graph) and launched again as one unit. Replaying re-uploads every host
/// value the work uploaded (recomputed where it was made by <see cref="Backend.FromArrayPerReplay"/>), then runs the
/// recorded kernels on the same addresses, in order with the rest of the backend's work.</summary>
public abstract class CapturedWork : IDisposable
{
    /// <summary>Kernels launched inside the captured region.</summary>
    public abstract int Launches { get; }
    /// <summary>Host uploads the work made; each is repeated before every replay.</summary>
    public abstract int Uploads { get; }
    /// <summary>Device bytes the graph keeps for itself (blocks freed inside the captured region).</summary>
    public abstract long HeldBytes { get; }
    public abstract void Replay();
    public abstract void Dispose();
}

public abstract partial class Backend
{
    /// <summary>Null where <see cref="Capture"/> can record graphs here, else why not (one line).</summary>
    public virtual string? CaptureUnsupported => $"{Info.KindName}: no CUDA graphs on this backend";

    /// <summary>
    /// Records the device work of <paramref name="work"/> without running it, or returns null with the reason when it
    /// cannot be recorded: the backend has no graphs, or the work allocates new device memory, reads a tensor back to
    /// the host or synchronises. Every tensor the work uses must outlive the returned graph, and every tensor it makes
    /// must be freed inside it (the graph keeps those blocks). Run the work once eagerly first, so the allocator holds
    /// the blocks it needs.
    /// </summary>
    public virtual CapturedWork? Capture(Action work, out string whyNot)
    {
        whyNot = CaptureUnsupported ?? $"{Info.KindName}: capture not implemented";
        return null;
    }

    [ThreadStatic] static Func<byte[]>? pendingRefresh;

    /// <summary>
    /// <see cref="FromArray"/> of <paramref name="values"/>(); when this upload is captured into a graph, each replay
    /// calls <paramref name="values"/> again and uploads the new values (e.g. the sinusoid of a timestep the caller
    /// changed between replays). Outside a capture the same as <c>FromArray(values(), shape)</c>.
    /// </summary>
    public Tensor FromArrayPerReplay(Func<float[]> values, params int[] shape)
    {
        pendingRefresh = () => MemoryMarshal.AsBytes(values().AsSpan()).ToArray();
        try { return FromArray(values(), shape); }
        finally { pendingRefresh = null; }
    }

    /// <summary>The recomputation of the upload now being made, if it came through <see cref="FromArrayPerReplay"/>.</summary>
    protected static Func<byte[]>? TakeUploadRefresh()
    {
        var refresh = pendingRefresh;
        pendingRefresh = null;
        return refresh;
    }
}
