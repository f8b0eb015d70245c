using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>Tape mechanics on every backend: fan-out, broadcasting, reuse, accumulation, no-grad, memory release.</summary>
[BackendFixtures]
public class AutogradTests(BackendKind kind) : KernelFixture(kind)
{
    Variable Leaf(params int[] shape)
    {
        var (t, _) = Input(shape);
        return new Variable(t, requiresGrad: true);
    }

    static void AssertPasses(GradcheckResult r) => Assert.That(r.Passed, Is.True, r.ToString() + "\n" + TestSeed.Describe());

    [Test]
    public void FanOutAndBroadcastPassGradcheck()
    {
        var x = Leaf(2, 3, 5);
        var bias = Leaf(3, 1);
        var scale = Leaf(1, 3, 1);
        try
        {
            // x is used three times (fan-out); bias and scale broadcast.
            Variable F3(Variable[] v) =>
                F.Add(F.Mul(F.Silu(F.Add(v[0], v[1])), v[2]), F.Mul(v[0], v[0]));
            AssertPasses(Gradcheck.Check(F3, [x, bias, scale]));
        }
        finally { x.Dispose(); bias.Dispose(); scale.Dispose(); }
    }

    [Test]
    public void ParameterUsedTwiceAccumulates()
    {
        var w = Leaf(4);
        var x = new Variable(Upload([1f, 2f, 3f, 4f], 4));
        try
        {
            using (new Graph())
            {
                var y = F.Sum(F.Add(F.Mul(w, x), F.Mul(w, w)));   // dy/dw = x + 2w
                y.Backward();
            }
            var wv = w.Data.ToArray();
            var g = w.Grad!.ToArray();
            for (int i = 0; i < 4; i++) Assert.That(g[i], Is.EqualTo((i + 1) + 2 * wv[i]).Within(1e-5));
            // A second backward pass adds to the gradient (PyTorch semantics) until ZeroGrad.
            using (new Graph()) F.Sum(F.Mul(w, x)).Backward();
            var g2 = w.Grad!.ToArray();
            for (int i = 0; i < 4; i++) Assert.That(g2[i], Is.EqualTo(2 * (i + 1) + 2 * wv[i]).Within(1e-5));
        }
        finally { w.Dispose(); x.Dispose(); }
    }

    [Test]
    public void SumMeanReshapeSubScalePassGradcheck()
    {
        var x = Leaf(3, 4, 5);
        var y = Leaf(4, 5);
        try
        {
            AssertPasses(Gradcheck.Check(v => F.Scale(F.Sub(F.Mean(v[0], [0], keepDims: false), F.Reshape(v[1], 4, 5)), -1.5f), [x, y]));
            AssertPasses(Gradcheck.Check(v => F.Sum(v[0], [0, 2], keepDims: true), [x]));
        }
        finally { x.Dispose(); y.Dispose(); }
    }

    [Test]
    public void NoGradRecordsNothing()
    {
        var w = Leaf(3);
        try
        {
            using var g = new Graph();
            using (Graph.NoGrad())
            {
                var y = F.Silu(w);
                Assert.That(y.RequiresGrad, Is.False);
                Assert.That(y.IsLeaf, Is.True);
            }
            Assert.That(g.NodeCount, Is.EqualTo(0));
            Assert.That(F.Silu(w).RequiresGrad, Is.True);
            Assert.That(g.NodeCount, Is.EqualTo(1));
        }
        finally { w.Dispose(); }
    }

    /// <summary>Bytes a tensor holds in its backend's allocator (the GPU pool rounds to size classes).</summary>
    long Footprint(Tensor t) => Kind == BackendKind.Cpu ? Math.Max(t.Bytes, 4) : Mdm.Kernels.Gpu.CachingAllocator.RoundSize(t.Bytes);

    [Test]
    public void BackwardFreesEverythingButParametersAndGradients()
    {
        // A 10-layer elementwise net: h = silu(h·w_l + b_l), per-channel parameters broadcast over [8, 16, 9, 9].
        var ps = new List<Variable>();
        for (int l = 0; l < 10; l++) { ps.Add(Leaf(1, 16, 1, 1)); ps.Add(Leaf(1, 16, 1, 1)); }
        var x = new Variable(Input(8, 16, 9, 9).t);
        try
        {
            (B as Mdm.Kernels.Gpu.IlgpuBackend)?.EmptyCache();
            long before = B.Memory.LiveBytes;
            float loss;
            using (var g = new Graph())
            {
                var h = x;
                for (int l = 0; l < 10; l++) h = F.Silu(F.Add(F.Mul(h, ps[2 * l]), ps[2 * l + 1]));
                var y = F.Mean(F.Mul(h, h));
                y.Backward();
                loss = y.Item();
                // Only the root (a scalar) is left of the graph's values.
                long during = B.Memory.LiveBytes - before;
                long gradBytes = ps.Sum(p => Footprint(p.Grad!));
                long slack = Footprint(y.Data);   // the scalar root
                Assert.That(during, Is.LessThanOrEqualTo(gradBytes + slack),
                    $"after backward {during} bytes are live beyond the inputs; gradients take {gradBytes}");
            }
            Assert.That(float.IsFinite(loss));
            long after = B.Memory.LiveBytes - before;
            Assert.That(after, Is.EqualTo(ps.Sum(p => Footprint(p.Grad!))),
                "after the graph is disposed only the gradients remain");
        }
        finally { foreach (var p in ps) p.Dispose(); x.Dispose(); }
    }
}

/// <summary>Checkpointed blocks give the same gradients as plain ones, on the CPU backend.</summary>
public class CheckpointTests
{
    [Test]
    public void CheckpointedBlockMatchesPlainBlock()
    {
        var b = TestBackends.Get(BackendKind.Cpu);
        var rng = TestSeed.NewRandom();
        var w = new Variable(b.FromArray(TestSeed.Uniform(rng, 6), 1, 6), true);
        var x = new Variable(b.FromArray(TestSeed.Uniform(rng, 24), 4, 6), true);
        Variable Block(Variable[] v) => F.Silu(F.Mul(F.Silu(F.Add(v[0], w)), w));
        float[] Grads(bool checkpoint, out float[] dw)
        {
            w.ZeroGrad(); x.ZeroGrad();
            using (new Graph())
            {
                var h = checkpoint ? Checkpoint.Run(Block, [x], [w]) : Block([x]);
                F.Sum(F.Mul(h, h)).Backward();
            }
            dw = w.Grad!.ToArray();
            return x.Grad!.ToArray();
        }
        var dxPlain = Grads(false, out var dwPlain);
        var dxCkpt = Grads(true, out var dwCkpt);
        Assert.That(dxCkpt, Is.EqualTo(dxPlain).Within(1e-6));
        Assert.That(dwCkpt, Is.EqualTo(dwPlain).Within(1e-6));
        w.Dispose(); x.Dispose();
    }

    /// <summary>A block whose values depend on autocast, checkpointed inside a bf16 scope and differentiated outside
    /// it: the recomputation must run under bf16 again, or its gradient would be the f32 one.</summary>
    [Test]
    public void RecomputationRunsUnderTheForwardsAutocast()
    {
        var b = TestBackends.Get(BackendKind.Cpu);
        var rng = TestSeed.NewRandom();
        var w = new Variable(b.FromArray(TestSeed.Uniform(rng, 6), 1, 6), true);
        var x = new Variable(b.FromArray(TestSeed.Uniform(rng, 24), 4, 6), true);
        Variable Block(Variable[] v) => F.Silu(F.Mul(F.Autocast(F.Silu(v[0])), F.Autocast(w)));
        float[] Grads(bool checkpoint)
        {
            w.ZeroGrad(); x.ZeroGrad();
            using (new Graph())
            {
                Variable loss;
                using (MixedPrecision.Bf16()) loss = F.Sum(checkpoint ? Checkpoint.Run(Block, [x], [w]) : Block([x]));
                loss.Backward();   // after the autocast scope has closed
            }
            return [.. x.Grad!.ToArray(), .. w.Grad!.ToArray()];
        }
        var plain = Grads(false);
        Assert.That(Grads(true), Is.EqualTo(plain), $"checkpointed gradients under bf16 autocast\n{TestSeed.Describe()}");
        w.Dispose(); x.Dispose();
    }
}
