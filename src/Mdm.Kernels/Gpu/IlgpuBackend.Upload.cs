using System.Runtime.InteropServices;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    /// <summary>Copies from pinned host arrays on a stream of their own, so a batch lands while the previous step runs
    /// on the default stream.</summary>
    public override BatchUploader CreateBatchUploader() => new PinnedBatchUploader(this);

    sealed class PinnedBatchUploader(IlgpuBackend backend) : BatchUploader
    {
        readonly AcceleratorStream copyStream = backend.accelerator.CreateStream();

        protected override Slot CreateSlot(int[] shape)
        {
            // A block fresh from the pool may still be read by queued kernels that freed it; the copy stream would not
            // wait for them. New slots are rare (first batch, a shape change), so wait for the device once here.
            backend.Synchronize();
            return new PinnedSlot(backend, copyStream, backend.Empty(shape));
        }

        public override void Dispose()
        {
            copyStream.Synchronize();
            base.Dispose();
            copyStream.Dispose();
        }
    }

    sealed class PinnedSlot : BatchUploader.Slot
    {
        readonly IlgpuBackend backend;
        readonly AcceleratorStream copyStream;
        readonly float[] host;
        readonly PageLockScope<float> pinned;
        ProfilingMarker? lastRead, copied;

        public PinnedSlot(IlgpuBackend backend, AcceleratorStream copyStream, Tensor tensor) : base(tensor)
        {
            this.backend = backend;
            this.copyStream = copyStream;
            host = GC.AllocateArray<float>(checked((int)tensor.Numel), pinned: true);
            pinned = backend.accelerator.CreatePageLockFromPinned(host);
        }

        public override void Copy(ReadOnlySpan<float> values)
        {
            lastRead?.Synchronize();          // the device has finished the step that read this slot last time
            lastRead?.Dispose();
            lastRead = null;
            values.CopyTo(host);
            F32(Tensor).CopyFromPageLockedAsync(copyStream, pinned);
            copied?.Dispose();
            copied = copyStream.AddProfilingMarker();
        }

        public override void WaitForCopy()
        {
            copied?.Synchronize();
        }

        public override void MarkReleased()
        {
            lastRead?.Dispose();
            lastRead = backend.accelerator.DefaultStream.AddProfilingMarker();
        }

        public override void Dispose()
        {
            copied?.Synchronize();
            copied?.Dispose();
            lastRead?.Dispose();
            pinned.Dispose();
            base.Dispose();
        }
    }
}
