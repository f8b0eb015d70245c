using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;
using Mdm.Tests.Harness;
using Mdm.Train.Distributed;

namespace Mdm.Tests.Distributed;

/// <summary>The bucketed exchange in one process, against a world of two whose other rank holds the same gradients:
/// buckets start in plan order from the backward, the plan follows the backward's order from the second step, a
/// bucket the backward never fills starts at the end, and the mean comes back bit for bit.</summary>
public class GradientBucketsTests
{
    /// <summary>Rank 0 of 2: a started sum completes after a few polls and doubles the buffer then (the other rank's
    /// gradients are this rank's); it records the size of each start.</summary>
    sealed class MirroredPair : Collective
    {
        public readonly List<int> Started = [];
        public override int Rank => 0;
        public override int WorldSize => 2;
        public override int LocalRank => 0;
        public override string Name => "a mirrored pair";
        public override void AllReduceSum(Span<float> buffer) { foreach (ref var v in buffer) v *= 2; }
        public override void Broadcast(Span<byte> buffer, int root) { }
        public override void Barrier() { }
        public override void Dispose() { }

        public override PendingCollective StartAllReduceSum(Memory<float> buffer)
        {
            Started.Add(buffer.Length);
            return new Pending(this, buffer);
        }

        sealed class Pending(MirroredPair owner, Memory<float> buffer) : PendingCollective
        {
            int polls;
            bool done;
            public override bool Test() { if (++polls >= 3) Wait(); return done; }
            public override void Wait() { if (!done) owner.AllReduceSum(buffer.Span); done = true; }
        }
    }

    [Test]
    public void BucketsStartInPlanOrderDuringTheBackwardFollowItsOrderFromStepTwoAndTheMeanComesBackExactly()
    {
        var backend = TestBackends.Get(BackendKind.Cpu);
        var rng = TestSeed.NewRandom();
        Variable Parameter(string name, int n) => new(backend.FromArray(TestSeed.Uniform(rng, n * n), n, n), requiresGrad: true, name);
        var unused = Parameter("unused", 2);
        var layers = Enumerable.Range(0, 6).Select(i => Parameter($"w{i}", 4)).ToArray();   // used in order w0 … w5
        // Registered out of order of use, "unused" first: the first plan (reverse registration) is w3 w5 w1 w4 w0 w2 unused.
        Variable[] all = [unused, layers[2], layers[0], layers[4], layers[1], layers[5], layers[3]];
        var world = new MirroredPair();
        using var x = new Variable(backend.FromArray(TestSeed.Uniform(rng, 12), 3, 4));
        // 64 bytes: one 4×4 weight per bucket.
        using var buckets = new GradientBuckets(world, all, backend, megabytes: 64.0 / (1024 * 1024));
        try
        {
            Assert.That(buckets.Plan.Buckets, Is.EqualTo(new[] { new[] { 6 }, new[] { 5 }, new[] { 4 }, new[] { 3 }, new[] { 2 }, new[] { 1 }, new[] { 0 } }));
            for (int step = 1; step <= 2; step++)
            {
                foreach (var p in all) p.ZeroGrad();
                world.Started.Clear();
                using (new Graph())
                {
                    var h = x;
                    foreach (var w in layers) h = F.Silu(F.Linear(h, w));
                    F.Sum(h).Backward(gradientReady: p =>
                    {
                        buckets.GradientReady!(p);
                        // The backward reports w5 … w0. Step 1: w3's bucket comes first, so nothing starts before w3,
                        // then w3 and w5, w1 and w4, w0 and w2. Step 2: one bucket per report.
                        int j = Array.IndexOf(layers, p);
                        int expected = step == 2 ? 6 - j : j switch { 5 or 4 => 0, 3 or 2 => 2, 1 => 4, _ => 6 };
                        Assert.That(world.Started, Has.Count.EqualTo(expected), $"step {step}: starts after {p.Name} was reported");
                    });
                }
                var local = layers.Select(w => w.Grad!.ToArray()).ToArray();
                buckets.Finish();
                Assert.That(world.Started, Is.EqualTo(new[] { 16, 16, 16, 16, 16, 16, 4 }), "each bucket once, in plan order; the unused parameter's from Finish");
                Assert.That(buckets.StartedBeforeLastGradient, Is.EqualTo(step == 1 ? 4 : 5), "w0 is reported last: its bucket (and, in step 1, w2's) starts at the backward's end");
                for (int i = 0; i < layers.Length; i++)
                    Assert.That(layers[i].Grad!.ToArray(), Is.EqualTo(local[i]), $"step {step}: w{i}'s mean over two equal ranks\n{TestSeed.Describe()}");
                Assert.That(unused.Grad, Is.Null, "a parameter without a gradient stays without one");
                if (step == 1)
                    Assert.That(buckets.Plan.Buckets, Is.EqualTo(new[] { new[] { 5 }, new[] { 3 }, new[] { 6 }, new[] { 1 }, new[] { 4 }, new[] { 2 }, new[] { 0 } }),
                        "after the first step the plan follows the reported order w5 … w0, then the unused parameter");
            }
            // A rank whose loss was not finite skips the backward: it still starts every bucket, in the same order.
            world.Started.Clear();
            buckets.Finish();
            Assert.That(world.Started, Is.EqualTo(new[] { 16, 16, 16, 16, 16, 16, 4 }));
            Assert.That(buckets.StartedBeforeLastGradient, Is.Zero);
        }
        finally { foreach (var p in all) p.Dispose(); }
    }
}
