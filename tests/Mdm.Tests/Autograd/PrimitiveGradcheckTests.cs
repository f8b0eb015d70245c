using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;
using Gradcheck = Mdm.Autograd.Gradcheck;

namespace Mdm.Tests.Autograd;

/// <summary>
/// Every autograd primitive's engine gradient against float64 finite differences of its reference (eps 1e-6),
/// plus a small conv net that trains on every backend.
/// </summary>
[BackendFixtures]
public class PrimitiveGradcheckTests(BackendKind kind) : KernelFixture(kind)
{
    Variable V(params int[] s) => new(B.FromArray(TestSeed.Uniform(Rng, Shape.Numel(s)), s), requiresGrad: true);

    void Check(Func<Variable[], Variable> f, Func<double[][], double[]> reference, params Variable[] inputs)
    {
        try
        {
            var r = Gradcheck.CheckAgainstReference(f, reference, inputs);
            Assert.That(r.Passed, r.ToString() + "\n" + TestSeed.Describe());
        }
        finally { foreach (var v in inputs) v.Dispose(); }
    }

    [Test]
    public void Conv2dStride1And2() 
    {
        int[] xs = [2, 3, 5, 5], ws = [4, 3, 3, 3];
        Check(v => F.Conv2d(v[0], v[1], v[2], 1, 1), a => Ref.Conv2d(a[0], xs, a[1], ws, a[2], 1, 1, 1, 1, out _, out _), V(xs), V(ws), V(4));
        Check(v => F.Conv2d(v[0], v[1], v[2], 2, 1), a => Ref.Conv2d(a[0], xs, a[1], ws, a[2], 2, 2, 1, 1, out _, out _), V(xs), V(ws), V(4));
    }

    [Test]
    public void Conv1dStride2()
    {
        int[] xs = [2, 3, 9], ws = [2, 3, 3];
        Check(v => F.Conv1d(v[0], v[1], v[2], 2, 1), a => Ref.Conv1d(a[0], xs, a[1], ws, a[2], 2, 1, out _, out _), V(xs), V(ws), V(2));
    }

    [Test]
    public void AttentionWithMaskAndRotary()
    {
        int b = 1, h = 2, nq = 5, nk = 4, d = 4;
        var mask = B.FromArray([1f, 1f, 0f, 1f], b, nk);
        try
        {
            Check(v => F.Attention(v[0], v[1], v[2], mask),
                a => Ref.Attention(a[0], a[1], a[2], [1, 1, 0, 1], b, h, nq, nk, d, out _, out _),
                V(b, h, nq, d), V(b, h, nk, d), V(b, h, nk, d));
        }
        finally { mask.Dispose(); }
        Check(v => F.Rotary(v[0], 10000f, 2), a => Ref.Rotary(a[0], 3, 4, 10000, 2, false), V(1, 2, 3, 4));
    }

    [Test]
    public void ShapeOps()
    {
        Check(v => F.Gelu(v[0]), a => Ref.Map(a[0], Ref.Gelu), V(3, 5));
        Check(v => F.ScaleShift(v[0], v[1], v[2]), a => Ref.ScaleShift(a[0], [2, 3, 4], a[1], a[2]), V(2, 3, 4), V(2, 3), V(2, 3));
        Check(v => F.UpsampleNearest2x(v[0]), a => Ref.UpsampleNearest2x(a[0], [1, 2, 3, 3]), V(1, 2, 3, 3));
        Check(v => F.AvgPool2d(v[0], 2), a => Ref.AvgPool2d(a[0], [1, 2, 4, 6], 2, out _), V(1, 2, 4, 6));
        Check(v => F.Concat([v[0], v[1]], 1), a => Ref.Concat([a[0], a[1]], [[2, 2, 3], [2, 1, 3]], 1, out _), V(2, 2, 3), V(2, 1, 3));
        Check(v => F.Narrow(v[0], 1, 1, 2), a => Ref.Split(a[0], [2, 4, 3], [1, 2, 1], 1)[1], V(2, 4, 3));
        Check(v => F.Permute(v[0], 2, 0, 1), a => Ref.Permute(a[0], [2, 3, 4], [2, 0, 1]), V(2, 3, 4));
        Check(v => F.MseLossPerSample(v[0], v[1]), a => Ref.MseRows(a[0], a[1], 3), V(3, 5), V(3, 5));
        Check(v => F.MseLoss(v[0], v[1]), a => [Ref.MseRows(a[0], a[1], 1)[0]], V(3, 5), V(3, 5));
    }

    [Test]
    public void NormOps()
    {
        int[] xs = [2, 4, 3, 3];
        Check(v => F.GroupNorm(v[0], 2, v[1], v[2]), a => Ref.GroupNorm(a[0], xs, 2, a[1], a[2], null, null, false, 1e-5, out _, out _, out _),
            V(xs), V(4), V(4));
        Check(v => F.GroupNormSilu(v[0], 2, v[1], v[2]), a => Ref.GroupNorm(a[0], xs, 2, a[1], a[2], null, null, true, 1e-5, out _, out _, out _),
            V(xs), V(4), V(4));
        Check(v => F.GroupNormFilmSilu(v[0], 2, v[1], v[2], v[3], v[4]),
            a => Ref.GroupNorm(a[0], xs, 2, a[1], a[2], a[3], a[4], true, 1e-5, out _, out _, out _), V(xs), V(4), V(4), V(2, 4), V(2, 4));
        Check(v => F.LayerNorm(v[0], v[1], v[2]), a => Ref.LayerNorm(a[0], 5, a[1], a[2], 1e-5, out _, out _, out _), V(3, 5), V(5), V(5));
    }

    sealed class TinyConvNet : Module
    {
        readonly Conv2d c1, c2, c3;
        public TinyConvNet(Backend b, ulong seed)
        {
            c1 = Child("c1", new Conv2d(b, 1, 4, 3, 1, 1, seed: seed, name: "c1"));
            c2 = Child("c2", new Conv2d(b, 4, 4, 3, 2, 1, seed: seed, name: "c2"));
            c3 = Child("c3", new Conv2d(b, 4, 1, 3, 1, 1, seed: seed, name: "c3"));
        }
        public Variable Forward(Variable x) => c3.Forward(F.UpsampleNearest2x(F.Silu(c2.Forward(F.Silu(c1.Forward(x))))));
    }

    [Test]
    public void ConvNetLossFalls()
    {
        // Learn to blur: target = upsample(avgpool(x)), from random 8×8 images.
        var (x, _) = Input(2, 1, 6, 6);
        var vx = new Variable(x);
        Variable target;
        using (Graph.NoGrad()) target = F.UpsampleNearest2x(F.AvgPool2d(vx, 2));
        var net = new TinyConvNet(B, (ulong)Rng.Next());
        var losses = new List<float>();
        try
        {
            int steps = Kind == BackendKind.IlgpuCpu ? 40 : 120;   // the CPU accelerator is slow; 40 steps still show the trend
            float lr = 0.5f;
            for (int step = 0; step < steps; step++)
            {
                using var g = new Graph();
                var loss = F.MseLoss(net.Forward(vx), target);
                loss.Backward();
                losses.Add(loss.Item());
                // Plain SGD, step halved whenever the loss rose: a fixed 0.5 diverged near the end for some
                // initialisations (seed 1206006428), a fixed 0.3 was too slow for others (seed 1530794841).
                if (losses.Count > 1 && losses[^1] > losses[^2]) lr *= 0.5f;
                foreach (var p in net.Parameters())
                {
                    Ops.Scale(p.Grad!, -lr, p.Grad!);
                    Ops.Add(p.Data, p.Grad!, p.Data);
                }
                net.ZeroGrad();
            }
            TestContext.Out.WriteLine($"loss {losses[0]:F4} -> {losses[^1]:F4}");
            Assert.That(losses[^1], Is.LessThan((Kind == BackendKind.IlgpuCpu ? 0.8f : 0.5f) * losses[0]), string.Join(", ", losses.Select(l => l.ToString("F4"))) + "\n" + TestSeed.Describe());
        }
        finally { net.DisposeParameters(); vx.Dispose(); target.Dispose(); }
    }
}

