using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Core;

/// <summary>Tensors, views, host copies, allocator accounting and argument errors, on every backend.</summary>
[BackendFixtures]
public class TensorTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void HostRoundTripAndViews()
    {
        var data = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();
        using var t = Upload(data, 4, 3, 2);
        Assert.That(t.ToArray(), Is.EqualTo(data));
        var rows = t.Slice(1, 2);
        Assert.That(rows.Shape, Is.EqualTo(new[] { 2, 3, 2 }));
        Assert.That(rows.ToArray(), Is.EqualTo(data[6..18]));
        var flat = rows.Reshape(12);
        Assert.That(flat.ToArray(), Is.EqualTo(data[6..18]));
        // Writing through a view changes only its rows.
        Ops.Fill(rows, -1f);
        var after = t.ToArray();
        Assert.That(after[..6], Is.EqualTo(data[..6]));
        Assert.That(after[6..18], Is.All.EqualTo(-1f));
        Assert.That(after[18..], Is.EqualTo(data[18..]));
        rows.Dispose();   // a view frees nothing
        Assert.That(t.IsDisposed, Is.False);
    }

    [Test]
    public void OpsWriteIntoSlices()
    {
        var (x, rx) = Input(6, 5);
        using (x)
        {
            using var y = Poisoned(6, 5);
            Ops.Scale(x.Slice(2, 3), 2f, y.Slice(2, 3));
            var got = y.ToArray();
            for (int i = 0; i < 30; i++)
                if (i is >= 10 and < 25) Assert.That(got[i], Is.EqualTo((float)(2 * rx[i])));
                else Assert.That(float.IsNaN(got[i]), $"element {i} outside the slice was touched");
        }
    }

    [Test]
    public void ErrorsNameTheOpAndShapes()
    {
        using var a = B.Zeros(2, 3);
        using var b = B.Zeros(4);
        using var h = B.Empty(DType.BF16, 2, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(a, b));
        Assert.That(e!.Message, Does.Contain("Add").And.Contain("[2,3]").And.Contain("[4]"));
        e = Assert.Throws<ArgumentException>(() => Ops.Mul(a, h));
        Assert.That(e!.Message, Does.Contain("Mul").And.Contain("BF16"));
        e = Assert.Throws<ArgumentException>(() => Ops.Silu(a, B.Zeros(3, 2)));
        Assert.That(e!.Message, Does.Contain("Silu").And.Contain("[3,2]"));
        e = Assert.Throws<ArgumentException>(() => Ops.Sum(a, [2]));
        Assert.That(e!.Message, Does.Contain("Sum").And.Contain("axis 2"));
        e = Assert.Throws<ArgumentException>(() => a.Reshape(5));
        Assert.That(e!.Message, Does.Contain("Reshape"));
        e = Assert.Throws<ArgumentException>(() => a.CopyFrom(new float[5]));
        Assert.That(e!.Message, Does.Contain("5").And.Contain("[2,3]"));
        if (Kind != BackendKind.Cpu)
        {
            using var other = TestBackends.Get(BackendKind.Cpu).Zeros(2, 3);
            e = Assert.Throws<ArgumentException>(() => Ops.Add(a, other));
            Assert.That(e!.Message, Does.Contain("Add").And.Contain("different devices"));
        }
    }

    [Test]
    public void DisposedMemoryIsReused()
    {
        using (var warm = B.Empty(1000, 100)) { }
        var before = B.Memory;
        for (int i = 0; i < 20; i++)
        {
            using var t = B.Empty(1000, 100);
            Ops.Fill(t, i);
        }
        var after = B.Memory;
        Assert.That(after.LiveBytes, Is.EqualTo(before.LiveBytes), "live bytes return to where they were");
        Assert.That(after.DeviceAllocations, Is.EqualTo(before.DeviceAllocations), "the pool serves repeats without new device allocations");
    }

    [Test]
    public void ZeroSizedTensorsAreHarmless()
    {
        using var a = B.Zeros(0, 5);
        using var b = B.Zeros(5);
        using var y = Ops.Add(a, b);
        Assert.That(y.Shape, Is.EqualTo(new[] { 0, 5 }));
        using var s = Ops.Sum(a, [0]);
        Assert.That(s.ToArray(), Is.All.EqualTo(0f));
    }

    [Test]
    public void TensorScopeFreesWhatItOwnsOnce()
    {
        var a = B.Zeros(3, 5);
        var b = B.Zeros(7);
        var scope = new TensorScope();
        Assert.That(scope.Own(a), Is.SameAs(a));
        scope.Own(b);
        Assert.That(scope.Count, Is.EqualTo(2));
        scope.Dispose();
        Assert.That(a.IsDisposed && b.IsDisposed, Is.True);
        scope.Dispose();
        using var late = B.Zeros(1);
        Assert.Throws<ObjectDisposedException>(() => scope.Own(late));
    }
}

public class CachingAllocatorTests
{
    [TestCase(1, 512)]
    [TestCase(513, 1024)]
    [TestCase(1 << 20, 1 << 20)]
    [TestCase((1 << 20) + 1, (1 << 20) + (64 << 10))]
    [TestCase((40L << 20) + 3, 42L << 20)]
    public void RoundsToSizeClasses(long bytes, long expected) => Assert.That(CachingAllocator.RoundSize(bytes), Is.EqualTo(expected));
}
