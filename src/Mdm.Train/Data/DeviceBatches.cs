using Mdm.Kernels;

namespace Mdm.Train.Data;

/// <summary>
/// The loader's batches on the device, one ahead: <see cref="Prefetch"/> (called once the step's backward is queued)
/// takes the next batch from the loader and starts its copy, which on CUDA runs from pinned memory on its own stream
/// while the queued step computes (<see cref="BatchUploader"/>). A data error met while prefetching is raised by the
/// <see cref="Next"/> that would have returned that batch, so the trainer sees it at the same step as without prefetch.
/// </summary>
public sealed class DeviceBatches(BatchLoader loader, Backend backend) : IDisposable
{
    readonly BatchUploader uploader = backend.CreateBatchUploader();
    (Batch Batch, StagedBatch Staged)? ahead;
    Exception? aheadError;
    StagedBatch? current;

    /// <summary>The next batch and its images on the device ([B·F, C, H, W] for clips). The images belong to this
    /// object and stay valid until the following <see cref="Next"/>.</summary>
    public (Batch Batch, Tensor Images) Next()
    {
        current?.Release();
        current = null;
        if (aheadError is { } error) { aheadError = null; System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error); }
        var (batch, staged) = ahead ?? Stage(loader.Next());
        ahead = null;
        current = staged;
        return (batch, staged.Take());
    }

    /// <summary>Starts the copy of the batch after the current one. The current batch's readers must be queued.</summary>
    public void Prefetch()
    {
        if (ahead is not null || aheadError is not null) return;
        current?.Release();
        try { ahead = Stage(loader.Next()); }
        catch (Exception e) { aheadError = e; }
    }

    (Batch, StagedBatch) Stage(Batch batch)
    {
        // Clips [B, F, C, H, W] are the model's frame rows [B·F, C, H, W].
        int[] s = batch.Shape;
        int[] rows = s.Length == 5 ? [s[0] * s[1], s[2], s[3], s[4]] : s;
        return (batch, uploader.Begin(batch.Values, rows));
    }

    public void Dispose() => uploader.Dispose();
}
