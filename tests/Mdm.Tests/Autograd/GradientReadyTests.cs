using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>The backward's gradient-ready subscriber: each parameter reported once, only after its last contribution,
/// newest first use first, with shared parameters, a checkpointed block and an unused parameter.</summary>
[BackendFixtures(BackendKind.Cpu)]   // bookkeeping only: the backend does not change which leaf is reported when
public class GradientReadyTests(BackendKind kind) : KernelFixture(kind)
{
    Variable Parameter(string name, params int[] shape) => new(Input(shape).t, requiresGrad: true, name);

    /// <summary>w1 is used by the first and the last op, s only inside a checkpointed block, w2 twice near the end
    /// (a matmul and a square), unused never.</summary>
    static Variable Loss(Variable x, Variable w1, Variable b1, Variable s, Variable w2)
    {
        var h1 = F.Silu(F.Linear(x, w1, b1));
        var h2 = Checkpoint.Run(v => F.Mul(F.Silu(v[0]), s), [h1], [s]);
        var h3 = F.Linear(h2, w2);
        var h4 = F.Linear(h3, w1);
        return F.Add(F.Sum(F.Mul(h4, h4)), F.Sum(F.Mul(w2, w2)));
    }

    [Test]
    public void EveryParameterIsReportedOnceAfterItsFinalGradientNewestFirstUseFirst()
    {
        using var x = new Variable(Input(3, 5).t);
        Variable w1 = Parameter("w1", 5, 5), b1 = Parameter("b1", 5), s = Parameter("s", 5), w2 = Parameter("w2", 5, 5), unused = Parameter("unused", 4);
        Variable[] all = [w1, b1, s, w2, unused];
        try
        {
            var reported = new List<(Variable Leaf, float[] Grad)>();
            using (new Graph()) Loss(x, w1, b1, s, w2).Backward(gradientReady: p => reported.Add((p, p.Grad!.ToArray())));

            Assert.That(reported.Select(r => r.Leaf.Name), Is.EqualTo(new[] { "w2", "s", "w1", "b1" }),
                "each used parameter once, in reverse order of first use (w1 and b1 share the first op, in its input order)");
            foreach (var (leaf, grad) in reported)
                Assert.That(grad, Is.EqualTo(leaf.Grad!.ToArray()), $"{leaf.Name}: its gradient changed after it was reported\n{TestSeed.Describe()}");
            Assert.That(unused.Grad, Is.Null);

            // The subscriber observes only: the same pass without one gives the same gradients, bit for bit.
            var withSubscriber = all.Take(4).Select(p => p.Grad!.ToArray()).ToArray();
            foreach (var p in all) p.ZeroGrad();
            using (new Graph()) Loss(x, w1, b1, s, w2).Backward();
            for (int i = 0; i < 4; i++) Assert.That(all[i].Grad!.ToArray(), Is.EqualTo(withSubscriber[i]), all[i].Name);
        }
        finally { foreach (var p in all) p.Dispose(); }
    }

    [Test]
    public void ALeafUsedTwiceByOneOpIsReportedOnceAfterBothContributions()
    {
        var w = Parameter("w", 4);
        try
        {
            float[]? seen = null;
            int reports = 0;
            using (new Graph()) F.Sum(F.Mul(w, w)).Backward(gradientReady: p => { reports++; seen = p.Grad!.ToArray(); });
            Assert.That(reports, Is.EqualTo(1));
            var value = w.Data.ToArray();
            for (int i = 0; i < 4; i++) Assert.That(seen![i], Is.EqualTo(2 * value[i]).Within(1e-6 * (1 + Math.Abs(value[i]))), $"w[{i}]\n{TestSeed.Describe()}");
        }
        finally { w.Dispose(); }
    }
}
