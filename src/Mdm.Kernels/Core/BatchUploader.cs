namespace Mdm.Kernels;

/// <summary>
/// Moves training batches from host arrays to the device, so that the copy of the next batch can run while the current
/// step computes. <see cref="Begin"/> starts a copy into one of the uploader's own device tensors and returns it;
/// <see cref="StagedBatch.Take"/> waits for the copy; <see cref="StagedBatch.Release"/> says the step that read it has
/// been queued, so its slot may be refilled once the device is done with it. Two slots: one in use, one filling.
/// The default copies synchronously (the CPU backend, where host and device memory are the same);
/// the ILGPU backend copies from pinned host memory on a stream of its own.
/// </summary>
public abstract class BatchUploader : IDisposable
{
    public const int Slots = 2;
    readonly Slot[] slots = new Slot[Slots];
    int next;
    bool disposed;

    /// <summary>Starts copying <paramref name="values"/> (row-major, of <paramref name="shape"/>) to the device.</summary>
    public StagedBatch Begin(ReadOnlySpan<float> values, int[] shape)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        long n = Shape.Numel(shape);
        if (values.Length != n)
            throw new ArgumentException($"BatchUploader.Begin: {values.Length} values for shape {Shape.Format(shape)} ({n} elements)");
        ref var slot = ref slots[next];
        if (slot?.InUse == true)
            throw new InvalidOperationException("BatchUploader: both slots are in use; release a staged batch before beginning a third");
        next = (next + 1) % Slots;
        if (slot is null || !slot.Tensor.Dims.SequenceEqual(shape))
        {
            slot?.Dispose();
            slot = CreateSlot(shape);
        }
        slot.InUse = true;
        slot.Generation++;
        slot.Copy(values);
        return new StagedBatch(slot, slot.Generation);
    }

    /// <summary>A device tensor of <paramref name="shape"/> with its host staging memory.</summary>
    protected abstract Slot CreateSlot(int[] shape);

    public virtual void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var s in slots) s?.Dispose();
    }

    /// <summary>One staging slot: the device tensor, filled by <see cref="Copy"/> and read by a step.</summary>
    public abstract class Slot(Tensor tensor) : IDisposable
    {
        public Tensor Tensor { get; } = tensor;
        internal bool InUse;
        internal long Generation;
        /// <summary>Starts the copy of <paramref name="values"/> into <see cref="Tensor"/>; waits first until the device
        /// has finished the step that last read it.</summary>
        public abstract void Copy(ReadOnlySpan<float> values);
        /// <summary>Returns once the copy has landed, before the tensor is read by kernels.</summary>
        public abstract void WaitForCopy();
        /// <summary>Called once the step reading the tensor is queued: remember where the device is.</summary>
        public abstract void MarkReleased();
        public virtual void Dispose() => Tensor.Dispose();
    }
}

/// <summary>A batch on its way to the device (see <see cref="BatchUploader"/>). The tensor belongs to the uploader:
/// read it, never dispose it.</summary>
public sealed class StagedBatch
{
    readonly BatchUploader.Slot slot;
    readonly long generation;
    internal StagedBatch(BatchUploader.Slot slot, long generation) { this.slot = slot; this.generation = generation; }

    bool Current => slot.InUse && slot.Generation == generation;

    /// <summary>The device tensor, once its copy has landed.</summary>
    public Tensor Take()
    {
        if (!Current) throw new InvalidOperationException("StagedBatch.Take: the batch was already released");
        slot.WaitForCopy();
        return slot.Tensor;
    }

    /// <summary>The step that read this batch is queued; the slot may be refilled after the device has run it.</summary>
    public void Release()
    {
        if (!Current) return;
        slot.MarkReleased();
        slot.InUse = false;
    }
}

/// <summary>The synchronous uploader: the copy is done when <see cref="BatchUploader.Begin"/> returns.</summary>
public sealed class SynchronousBatchUploader(Backend backend) : BatchUploader
{
    protected override Slot CreateSlot(int[] shape) => new CopySlot(backend.Empty(shape));

    sealed class CopySlot(Tensor tensor) : Slot(tensor)
    {
        public override void Copy(ReadOnlySpan<float> values) => Tensor.CopyFrom(values);
        public override void WaitForCopy() { }
        public override void MarkReleased() { }
    }
}
