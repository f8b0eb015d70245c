using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Training;

/// <summary>The training-side optimizer wrapper: clipping, bias correction, zeroing, EMA, warmup schedule.</summary>
public class OptimizerTests
{
    static Backend Cpu => TestBackends.Get(BackendKind.Cpu);

    [Test]
    public void AdamWStepMatchesHandComputedUpdateWithClipping()
    {
        var p = new Variable(Cpu.FromArray([1f, -2f, 3f], 3), requiresGrad: true, name: "w");
        using (var c = new Variable(Cpu.FromArray([3f, 0f, 4f], 3)))
        using (new Graph()) F.Sum(F.Mul(p, c)).Backward();    // grad = [3, 0, 4], ‖g‖ = 5; clipped to norm 2
        using var opt = new AdamWOptimizer([("w", p)], AdamOptions.AdamW(0.1, 0.0), maxGradNorm: 2f);
        using var norm = opt.Step(0.1);
        Assert.That(norm.Item(), Is.EqualTo(5f).Within(1e-5));
        // Step 1 of Adam: m̂ = g', v̂ = g'², update = lr·g'/(|g'| + eps) = lr·sign(g') for g' ≠ 0.
        var w = p.Data.ToArray();
        Assert.That(w[0], Is.EqualTo(0.9f).Within(1e-5));
        Assert.That(w[1], Is.EqualTo(-2f).Within(1e-6));
        Assert.That(w[2], Is.EqualTo(2.9f).Within(1e-5));
        Assert.That(p.Grad, Is.Null, "gradients are zeroed after the step");
        Assert.That(opt.StepCount, Is.EqualTo(1));
        Assert.That(opt.StateTensors().Select(s => s.Name), Is.EqualTo(new[] { "optimizer.m.w", "optimizer.v.w" }));
        p.Dispose();
    }

    [Test]
    public void EmaFollowsDecayAndWarmup()
    {
        var p = new Variable(Cpu.FromArray([0f], 1), requiresGrad: true);
        using var ema = new ExponentialMovingAverage([("p", p)], decay: 0.9f);
        Ops.Fill(p.Data, 10f);
        ema.Update();
        Assert.That(ema.Tensors().Single().Value.Item(), Is.EqualTo(1f).Within(1e-6));   // 0.9·0 + 0.1·10
        using var warm = new ExponentialMovingAverage([("p", p)], decay: 0.9999f, warmup: true);
        Assert.That(warm.CurrentDecay, Is.EqualTo(0.1f).Within(1e-7));                  // (1+0)/(10+0)
        warm.Update();
        Assert.That(warm.CurrentDecay, Is.EqualTo(2f / 11f).Within(1e-7));
        p.Dispose();
    }

    [TestCase(0, 0.5)]
    [TestCase(1, 0.5)]
    [TestCase(5, 2.5)]
    [TestCase(10, 5.0)]
    [TestCase(1000, 5.0)]
    public void WarmupThenConstant(long step, double lr) =>
        Assert.That(new LearningRateSchedule(5.0, 10).At(step), Is.EqualTo(lr).Within(1e-12));
}
