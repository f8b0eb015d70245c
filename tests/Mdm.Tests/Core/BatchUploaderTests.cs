using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Core;

/// <summary>The double-buffered batch upload: what lands is what was given, a slot is refilled only after the step
/// that read it, and misuse is refused. On every backend (the ILGPU ones copy from pinned memory on a second stream).</summary>
[BackendFixtures]
public class BatchUploaderTests(BackendKind kind) : KernelFixture(kind)
{
    float[] RandomBatch(int n) => Enumerable.Range(0, n).Select(_ => (float)Rng.NextDouble() * 2 - 1).ToArray();

    [Test]
    public void BatchesLandIntactWhileTheNextIsStaged()
    {
        using var uploader = B.CreateBatchUploader();
        int[] shape = [3, 3, 9, 9];
        var batches = Enumerable.Range(0, 5).Select(_ => RandomBatch(3 * 3 * 9 * 9)).ToList();
        var staged = uploader.Begin(batches[0], shape);
        for (int i = 0; i < batches.Count; i++)
        {
            var x = staged.Take();
            // Stage the next batch before this one is read: the two must not share memory.
            var next = i + 1 < batches.Count ? uploader.Begin(batches[i + 1], shape) : null;
            using var y = Ops.Scale(x, 2f);
            Assert.That(x.Dims.ToArray(), Is.EqualTo(shape));
            Assert.That(y.ToArray(), Is.EqualTo(batches[i].Select(v => 2 * v).ToArray()), $"batch {i}");
            staged.Release();
            if (next is not null) staged = next;
        }
    }

    [Test]
    public void AShapeChangeGetsFreshSlots()
    {
        using var uploader = B.CreateBatchUploader();
        var a = RandomBatch(2 * 5);
        var first = uploader.Begin(a, [2, 5]);
        Assert.That(first.Take().ToArray(), Is.EqualTo(a));
        first.Release();
        var b = RandomBatch(3 * 7);   // e.g. a last, smaller batch
        var second = uploader.Begin(b, [3, 7]);
        Assert.That(second.Take().ToArray(), Is.EqualTo(b));
        second.Release();
        var third = uploader.Begin(a, [2, 5]);
        Assert.That(third.Take().ToArray(), Is.EqualTo(a));
        third.Release();
    }

    [Test]
    public void MisuseIsRefusedWithTheReason()
    {
        using var uploader = B.CreateBatchUploader();
        var ex = Assert.Throws<ArgumentException>(() => uploader.Begin(new float[5], [2, 3]));
        Assert.That(ex!.Message, Does.Contain("5 values for shape [2,3]"));
        var one = uploader.Begin(new float[6], [2, 3]);
        var two = uploader.Begin(new float[6], [2, 3]);
        var busy = Assert.Throws<InvalidOperationException>(() => uploader.Begin(new float[6], [2, 3]));
        Assert.That(busy!.Message, Does.Contain("both slots are in use"));
        one.Release();
        Assert.Throws<InvalidOperationException>(() => one.Take());
        two.Release();
        uploader.Dispose();
        Assert.Throws<ObjectDisposedException>(() => uploader.Begin(new float[6], [2, 3]));
    }
}
