using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.Graphs;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Graphs;

/// <summary>The allocator's side of a capture: blocks freed inside it belong to the graph (and are handed out again
/// inside it), a block still in use at its end escapes, and a cache miss is refused instead of allocated.</summary>
public class CaptureMemoryTests
{
    sealed class Block(string name) { public override string ToString() => name; }

    [Test]
    public void FreedBlocksAreHeldOnceAndReusedBySize()
    {
        var memory = new CaptureMemory<Block>();
        Block a = new("a"), b = new("b"), before = new("made before the capture");
        memory.Took(a);
        memory.Took(b);
        Assert.That(memory.Escaped, Is.EqualTo(2));
        memory.Returned(a, 512);
        memory.Returned(before, 1024);
        Assert.That(memory.TryReuse(2048), Is.Null, "no freed block of that size");
        Assert.That(memory.TryReuse(512), Is.SameAs(a), "a block freed in the capture is reused in it");
        memory.Returned(a, 512);
        memory.Returned(b, 512);
        Assert.That(memory.Held.Select(h => h.Block), Is.EqualTo(new[] { a, before, b }), "each freed block held once, in order");
        Assert.That(memory.Held.Sum(h => h.Size), Is.EqualTo(2048));
        Assert.That(memory.Escaped, Is.Zero);
    }

    [Test]
    public void BlockStillInUseAtTheEndEscapes()
    {
        var memory = new CaptureMemory<Block>();
        Block kept = new("kept");
        memory.Returned(kept, 512);
        Assert.That(memory.TryReuse(512), Is.SameAs(kept));
        Assert.That(memory.Escaped, Is.EqualTo(1), "taken again and not freed: a replay would write it behind its owner's back");
    }
}

/// <summary>The caching allocator in capture mode on the CPU accelerator's buffers: hits come from the cache, a miss
/// throws <see cref="GraphCaptureException"/>, frees stay live (the graph's) until released.</summary>
[BackendFixtures(BackendKind.IlgpuCpu)]
public class CaptureAllocatorTests_IlgpuCpu() : KernelFixture(BackendKind.IlgpuCpu)
{
    [Test]
    public void CaptureTakesCachedBlocksAndRefusesNewOnes()
    {
        using var pool = new CachingAllocator(((IlgpuBackend)B).Accelerator);
        pool.Return(pool.Rent(1000));
        Assert.That(pool.Stats.DeviceAllocations, Is.EqualTo(1));
        var memory = pool.BeginCapture();
        try
        {
            var block = pool.Rent(900);   // same size class
            var e = Assert.Throws<GraphCaptureException>(() => pool.Rent(5000))!;
            Assert.That(e.Message, Does.Contain("device allocation of 5,000 bytes"));
            pool.Return(block);
            Assert.That(pool.Stats.LiveBytes, Is.EqualTo(1024), "a block freed in the capture stays the graph's");
            Assert.That(memory.Held, Has.Count.EqualTo(1));
        }
        finally { pool.EndCapture(); }
        pool.Release(memory.Held.Select(h => h.Block));
        Assert.That(pool.Stats, Is.EqualTo(pool.Stats with { LiveBytes = 0, CachedBytes = 1024, DeviceAllocations = 1 }));
    }
}

/// <summary>Where graphs cannot be captured (the CPU backends): Capture says why and never runs the work, and
/// <see cref="Backend.FromArrayPerReplay"/> is a plain upload.</summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class CaptureFallbackTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void CaptureIsRefusedWithTheReason()
    {
        bool ran = false;
        Assert.That(B.Capture(() => ran = true, out var whyNot), Is.Null);
        Assert.That(ran, Is.False, "the work is not run by a refused capture");
        Assert.That(whyNot, Does.StartWith(B.Info.KindName + ":").And.Contain("no CUDA graphs"));
        Assert.That(B.CaptureUnsupported, Is.EqualTo(whyNot));
    }

    [Test]
    public void PerReplayUploadIsAnUpload()
    {
        var values = TestSeed.Uniform(Rng, 7);
        using var t = B.FromArrayPerReplay(() => values, 7);
        Assert.That(t.ToArray(), Is.EqualTo(values));
    }
}

/// <summary>What invalidates a captured graph: another shape, dtype, storage or offset of a tensor it uses, or another
/// host setting (batch, labels).</summary>
[BackendFixtures(BackendKind.Cpu)]
public class GraphKeyTests_Cpu() : KernelFixture(BackendKind.Cpu)
{
    [Test]
    public void KeyChangesWithShapesAddressesAndSettings()
    {
        using var a = B.Zeros(2, 3);
        using var b = B.Zeros(2, 3);
        using var wide = B.Zeros(4, 3);
        int[] labels = [1, 2];
        GraphKey Key(Tensor t, int batch, int[] l) => GraphKey.Of([t], ("batch", batch), ("labels", l));
        var key = Key(a, 2, labels);
        Assert.That(key.Difference(Key(a, 2, [1, 2])), Is.Null, "labels compare by their elements");
        Assert.That(Key(a, 2, labels), Is.EqualTo(key));
        Assert.That(key.Difference(Key(b, 2, labels)), Does.Contain("another address"));
        Assert.That(key.Difference(Key(a.Reshape(3, 2), 2, labels)), Does.Contain("[3,2]"));
        using var rows = wide.Slice(1, 2);
        Assert.That(Key(wide.Slice(0, 2), 2, labels).Difference(Key(rows, 2, labels)), Does.Contain("another address"), "same storage, another offset");
        Assert.That(key.Difference(Key(a, 3, labels)), Is.EqualTo("batch is 3 instead of 2"));
        Assert.That(key.Difference(Key(a, 2, [2, 1])), Is.EqualTo("labels is [2, 1] instead of [1, 2]"));
        Assert.That(key.Difference(GraphKey.Of([a, b], ("batch", 2), ("labels", labels))), Does.Contain("2 tensors instead of 1"));
    }
}
