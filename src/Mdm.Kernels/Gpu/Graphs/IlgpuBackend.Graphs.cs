using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Mdm.Kernels.Gpu.Graphs;

namespace Mdm.Kernels.Gpu;

// CUDA graphs: Capture records a region's launches on a stream of its own (ILGPU's default stream is the legacy NULL
// stream, which cannot be captured); a replay launches the graph on the default stream, so it is ordered with all
// other work. While capturing, uploads are recorded (and repeated before each replay), frees go to the graph's own
// blocks, and device allocations, host reads and synchronisations give the capture up.
public sealed partial class IlgpuBackend
{
    sealed class CaptureInProgress(CudaStream stream)
    {
        public readonly CudaStream Stream = stream;
        public readonly List<(ArrayView<byte> Target, byte[] Bytes, Func<byte[]>? Refresh)> Uploads = new();
        public int Launches;
    }

    CaptureInProgress? capturing;

    /// <summary>Where kernels go: the capture stream while capturing, else the default stream.</summary>
    AcceleratorStream LaunchStream => capturing?.Stream ?? accelerator.DefaultStream;

    public override string? CaptureUnsupported =>
        Kind != BackendKind.Cuda ? $"{Info.KindName}: the ILGPU CPU accelerator has no CUDA graphs" : CudaGraphDriver.Unsupported();

    void RefuseWhileCapturing(string what)
    {
        if (capturing is not null) throw new GraphCaptureException($"{what} inside the captured region");
    }

    /// <summary>While capturing, an upload is only recorded: each replay makes it before launching the graph.</summary>
    bool RecordUpload(Tensor dst, ReadOnlySpan<byte> src)
    {
        var refresh = TakeUploadRefresh();
        if (capturing is null) return false;
        capturing.Uploads.Add((Raw(dst), src.ToArray(), refresh));
        return true;
    }

    public override CapturedWork? Capture(Action work, out string whyNot)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (CaptureUnsupported is { } unsupported) { whyNot = unsupported; return null; }
        if (capturing is not null) { whyNot = "cuda: a capture is already in progress"; return null; }
        accelerator.Synchronize();
        var stream = (CudaStream)accelerator.CreateStream();
        accelerator.Bind();
        int rc = CudaGraphDriver.cuStreamBeginCapture(stream.StreamPtr, CudaGraphDriver.CaptureModeRelaxed);
        if (rc != 0)
        {
            stream.Dispose();
            whyNot = $"cuda: cuStreamBeginCapture failed with {CudaGraphDriver.ErrorName(rc)}";
            return null;
        }
        var session = new CaptureInProgress(stream);
        var memory = pool.BeginCapture();
        capturing = session;
        string? refused = null;
        IntPtr graph;
        try { work(); }
        catch (Exception e) { refused = e is GraphCaptureException ? e.Message : $"{e.GetType().Name}: {e.Message}"; }
        finally
        {
            capturing = null;
            pool.EndCapture();
            int end = CudaGraphDriver.cuStreamEndCapture(stream.StreamPtr, out graph);
            if (end != 0) refused ??= $"cuStreamEndCapture failed with {CudaGraphDriver.ErrorName(end)}";
            stream.Dispose();
        }
        if (refused is null && memory.Escaped > 0)
            refused = $"{memory.Escaped} device blocks taken inside the captured region are still in use after it (tensors made there must be freed there)";
        IntPtr exec = IntPtr.Zero;
        if (refused is null && (rc = CudaGraphDriver.cuGraphInstantiateWithFlags(out exec, graph, 0)) != 0)
            refused = $"cuGraphInstantiateWithFlags failed with {CudaGraphDriver.ErrorName(rc)}";
        var held = memory.Held.Select(h => h.Block).ToArray();
        if (refused is not null)
        {
            if (graph != IntPtr.Zero) CudaGraphDriver.cuGraphDestroy(graph);
            pool.Release(held);
            whyNot = $"cuda: {refused}";
            return null;
        }
        whyNot = "";
        return new CudaGraph(this, graph, exec, held, memory.Held.Sum(h => h.Size), session.Uploads, session.Launches);
    }

    sealed class CudaGraph(IlgpuBackend backend, IntPtr graph, IntPtr exec, MemoryBuffer1D<byte, Stride1D.Dense>[] held, long heldBytes,
        List<(ArrayView<byte> Target, byte[] Bytes, Func<byte[]>? Refresh)> uploads, int launches) : CapturedWork
    {
        bool disposed;
        public override int Launches => launches;
        public override int Uploads => uploads.Count;
        public override long HeldBytes => heldBytes;

        public override void Replay()
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (backend.capturing is not null) throw new InvalidOperationException("cuda: a graph cannot be replayed inside another capture");
            var stream = backend.accelerator.DefaultStream;
            foreach (var (target, captured, refresh) in uploads)
            {
                var bytes = refresh?.Invoke() ?? captured;
                if (bytes.Length != captured.Length)
                    throw new InvalidOperationException($"cuda graph replay: an upload recomputed to {bytes.Length} bytes, it was captured with {captured.Length}");
                ArrayView1D<byte, Stride1D.Dense> view = target;
                view.CopyFromCPU(stream, bytes);
            }
            backend.accelerator.Bind();
            int rc = CudaGraphDriver.cuGraphLaunch(exec, IntPtr.Zero);
            if (rc != 0) throw new InvalidOperationException($"cuda: cuGraphLaunch failed with {CudaGraphDriver.ErrorName(rc)}");
        }

        public override void Dispose()
        {
            if (disposed) return;
            disposed = true;
            backend.accelerator.Synchronize();
            CudaGraphDriver.cuGraphExecDestroy(exec);
            CudaGraphDriver.cuGraphDestroy(graph);
            backend.pool.Release(held);
        }
    }
}
