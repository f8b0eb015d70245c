using Mdm.Kernels;
using Mdm.Kernels.Collectives;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Distributed;

public class SingleProcessCollectiveTests
{
    [Test]
    public void ReductionsAreTheIdentity()
    {
        var rng = TestSeed.NewRandom();
        var values = TestSeed.Uniform(rng, 1 + rng.Next(300));
        using var c = new SingleProcessCollective();
        Assert.That((c.Rank, c.WorldSize, c.LocalRank), Is.EqualTo((0, 1, 0)));
        var sum = (float[])values.Clone();
        c.AllReduceSum(sum);
        var mean = (float[])values.Clone();
        c.AllReduceAverage(mean);
        Assert.That(sum, Is.EqualTo(values), TestSeed.Describe());
        Assert.That(mean, Is.EqualTo(values), TestSeed.Describe());
    }

    [Test]
    public void TensorReductionsLeaveTheTensorUnchanged()
    {
        var rng = TestSeed.NewRandom();
        var values = TestSeed.Uniform(rng, 3 * 5 * 7);
        using var backend = Backends.Create(BackendKind.Cpu);
        using var t = backend.FromArray(values, 3, 5, 7);
        using var c = new SingleProcessCollective();
        c.AllReduceSum(t);
        c.AllReduceAverage(t);
        Assert.That(t.ToArray(), Is.EqualTo(values), TestSeed.Describe());
    }

    [Test]
    public void BroadcastFromRankZeroKeepsTheBufferAndOtherRootsAreRefused()
    {
        var bytes = new byte[] { 1, 2, 3, 250 };
        using var c = new SingleProcessCollective();
        c.Broadcast(bytes, 0);
        c.Barrier();
        Assert.That(bytes, Is.EqualTo(new byte[] { 1, 2, 3, 250 }));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => c.Broadcast(new float[2], 1))!;
        Assert.That(e.Message, Does.Contain("0..0"));
    }

    [Test]
    public void AProcessStartedOnItsOwnGetsTheSingleProcessCollective()
    {
        if (LaunchEnvironment.FromProcess().IsLaunched) Assert.Ignore("this test process was itself started by a launcher");
        using var c = Collective.FromEnvironment();
        Assert.That(c, Is.InstanceOf<SingleProcessCollective>());
        Assert.That(c.Name, Is.EqualTo("single process"));
    }
}
