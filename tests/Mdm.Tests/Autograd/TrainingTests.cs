using Mdm.Autograd;
using Mdm.Autograd.Examples;
using Mdm.Autograd.Nn;
using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;
using Gradcheck = Mdm.Autograd.Gradcheck;

namespace Mdm.Tests.Autograd;

/// <summary>Small models train with falling loss on every backend; primitives pass the float64 gradcheck.</summary>
[BackendFixtures]
public class TrainingTests(BackendKind kind) : KernelFixture(kind)
{
    sealed class Mlp : Module
    {
        readonly Linear l1, l2, l3;
        readonly Variable? gain;
        public Mlp(Backend b, int inF, int hidden, ulong seed, bool rmsNorm)
        {
            l1 = Child("l1", new Linear(b, inF, hidden, seed: seed, name: "l1"));
            l2 = Child("l2", new Linear(b, hidden, hidden, seed: seed, name: "l2"));
            l3 = Child("l3", new Linear(b, hidden, 1, seed: seed, name: "l3"));
            if (rmsNorm) gain = Parameter("gain", b.Full(1f, hidden));
        }
        public Variable Forward(Variable x)
        {
            var h = F.Silu(l1.Forward(x));
            if (gain is not null) h = RmsNorm.Apply(h, gain);   // the custom-op example inside a model
            return l3.Forward(F.Silu(l2.Forward(h)));
        }
    }

    static void SgdStep(Module m, float lr)
    {
        foreach (var p in m.Parameters())
        {
            if (p.Grad is null) continue;
            Ops.Scale(p.Grad, -lr, p.Grad);
            Ops.Add(p.Data, p.Grad, p.Data);
        }
        m.ZeroGrad();
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MlpLossFalls(bool withCustomRmsNorm)
    {
        int n = 32, inF = 6;
        var (x, rx) = Input(n, inF);
        // Target: a smooth function of the inputs.
        var target = new float[n];
        for (int i = 0; i < n; i++) target[i] = (float)Math.Sin(rx[i * inF] * 2 + rx[i * inF + 1]);
        var vx = new Variable(x);
        var vy = new Variable(Upload(target, n, 1));
        var model = new Mlp(B, inF, 16, seed: (ulong)Rng.Next(), withCustomRmsNorm);
        var losses = new List<float>();
        try
        {
            for (int step = 0; step < 60; step++)
            {
                using var g = new Graph();
                var pred = model.Forward(vx);
                var diff = F.Sub(pred, vy);
                var loss = F.Mean(F.Mul(diff, diff));
                loss.Backward();
                losses.Add(loss.Item());
                SgdStep(model, 0.25f);
            }
            TestContext.Out.WriteLine($"loss {losses[0]:F4} -> {losses[^1]:F4}");
            Assert.That(losses[^1], Is.LessThan(0.5f * losses[0]), $"losses: {string.Join(", ", losses.Select(l => l.ToString("F4")))}\n{TestSeed.Describe()}");
        }
        finally { model.DisposeParameters(); vx.Dispose(); vy.Dispose(); }
    }

    [Test]
    public void MatMulAndLinearPassFloat64Gradcheck()
    {
        var rng = Rng;
        Variable V(params int[] s) => new(B.FromArray(TestSeed.Uniform(rng, Shape.Numel(s)), s), requiresGrad: true);
        var a = V(5, 3); var b = V(4, 3); var w = V(7, 3); var bias = V(7);
        try
        {
            var r = Gradcheck.CheckAgainstReference(v => F.MatMul(v[0], v[1], transB: true),
                xs => Ref.MatMul(xs[0], [5, 3], false, xs[1], [4, 3], true, out _, out _), [a, b]);
            Assert.That(r.Passed, r.ToString());
            r = Gradcheck.CheckAgainstReference(v => F.Linear(v[0], v[1], v[2]),
                xs => Ref.Linear(xs[0], xs[1], 7, 3, xs[2], out _), [a, w, bias]);
            Assert.That(r.Passed, r.ToString());
        }
        finally { a.Dispose(); b.Dispose(); w.Dispose(); bias.Dispose(); }
    }

    [Test]
    public void ElementwisePrimitivesPassFloat64Gradcheck()
    {
        var rng = Rng;
        Variable V(params int[] s) => new(B.FromArray(TestSeed.Uniform(rng, Shape.Numel(s)), s), requiresGrad: true);
        var a = V(2, 3, 4); var b = V(3, 1);
        try
        {
            void Check(Func<Variable[], Variable> f, Func<double[][], double[]> reference, params Variable[] inputs)
            {
                var r = Gradcheck.CheckAgainstReference(f, reference, inputs);
                Assert.That(r.Passed, r.ToString() + "\n" + TestSeed.Describe());
            }
            int[] sa = [2, 3, 4], sb = [3, 1];
            Check(v => F.Add(v[0], v[1]), xs => Ref.Binary(xs[0], sa, xs[1], sb, (p, q) => p + q, out _), a, b);
            Check(v => F.Sub(v[0], v[1]), xs => Ref.Binary(xs[0], sa, xs[1], sb, (p, q) => p - q, out _), a, b);
            Check(v => F.Mul(v[0], v[1]), xs => Ref.Binary(xs[0], sa, xs[1], sb, (p, q) => p * q, out _), a, b);
            Check(v => F.Scale(v[0], 0.3f), xs => Ref.Map(xs[0], x => 0.3 * x), a);
            Check(v => F.Silu(v[0]), xs => Ref.Map(xs[0], Ref.Silu), a);
            Check(v => F.Sum(v[0], [1]), xs => Ref.Sum(xs[0], sa, [1], out _, out _), a);
            Check(v => F.Mean(v[0], [0, 2]), xs => Ref.Sum(xs[0], sa, [0, 2], out _, out _).Select(s => s / 8).ToArray(), a);
            Check(v => F.Reshape(v[0], 6, 4), xs => xs[0], a);
        }
        finally { a.Dispose(); b.Dispose(); }
    }
}

