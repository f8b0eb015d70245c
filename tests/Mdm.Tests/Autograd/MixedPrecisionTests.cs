using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>bf16 autocast: operands and their gradients are rounded to bf16; products accumulate in f32.</summary>
public class MixedPrecisionTests
{
    static Backend Cpu => TestBackends.Get(BackendKind.Cpu);

    [Test]
    public void CastRoundsValuesAndGradientsToBF16()
    {
        var rng = TestSeed.NewRandom();
        var xs = TestSeed.Uniform(rng, 64);
        var gs = TestSeed.Uniform(rng, 64);
        using var x = new Variable(Cpu.FromArray(xs, 64), requiresGrad: true);
        using var g = Cpu.FromArray(gs, 64);
        using (new Graph())
        {
            var y = F.CastBF16(x);
            var yv = y.Data.ToArray();
            for (int i = 0; i < 64; i++) Assert.That(yv[i], Is.EqualTo(BFloat16.ToFloat(BFloat16.FromFloat(xs[i]))), $"value {i}");
            y.Backward(g);
        }
        var dx = x.Grad!.ToArray();
        for (int i = 0; i < 64; i++) Assert.That(dx[i], Is.EqualTo(BFloat16.ToFloat(BFloat16.FromFloat(gs[i]))), $"gradient {i}");
    }

    [Test]
    public void AutocastOnlyInsideTheScope()
    {
        using var x = new Variable(Cpu.FromArray([1.00390625f + 1e-4f], 1), requiresGrad: true);
        using (new Graph())
        {
            Assert.That(F.Autocast(x), Is.SameAs(x));
            using (MixedPrecision.Bf16())
            {
                Assert.That(MixedPrecision.Enabled);
                Assert.That(F.Autocast(x).Data.Item(), Is.EqualTo(1.0078125f));
            }
            Assert.That(MixedPrecision.Enabled, Is.False);
        }
    }

    [Test]
    public void Bf16LinearMatchesTheBf16MatmulKernel()
    {
        // Autocast emulation (rounded f32 operands) must give the same numbers as the BF16-storage kernel.
        var rng = TestSeed.NewRandom();
        using var x = new Variable(Cpu.FromArray(TestSeed.Uniform(rng, 9 * 24), 9, 24));
        using var w = new Variable(Cpu.FromArray(TestSeed.Uniform(rng, 7 * 24), 7, 24));
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        using var kernel = Ops.Linear(xb, wb);
        using (new Graph())
        using (MixedPrecision.Bf16())
        {
            var y = F.Linear(F.Autocast(x), F.Autocast(w));
            Assert.That(y.Data.ToArray(), Is.EqualTo(kernel.ToArray()).Within(1e-5));
        }
    }
}

/// <summary>
/// On CUDA, autocast hands Linear and Conv2d bf16 tensors (tensor cores), forward and backward. The forward must equal
/// the emulation (f32 storage of the same bf16 values) up to f32 summation order; the gradients differ only by dy being
/// rounded to bf16 first, as torch.autocast does, so they agree to bf16 precision.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class MixedPrecisionTensorCoreTests_Cuda
{
    [Test]
    public void AutocastConvAndLinearOnTensorCoresMatchTheEmulation()
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)TestBackends.Get(BackendKind.Cuda);
        var rng = TestSeed.NewRandom();
        var xs = TestSeed.Uniform(rng, 2 * 16 * 8 * 8);
        var ws = TestSeed.Uniform(rng, 24 * 16 * 9);
        var bs = TestSeed.Uniform(rng, 24);
        var ls = TestSeed.Uniform(rng, 40 * 24);
        var gs = TestSeed.Uniform(rng, 2 * 64 * 40);

        (float[] y, float[] dx, float[] dw, float[] dl) Run(bool tensorCores)
        {
            gpu.UseTensorCores = tensorCores;
            try
            {
                using var x = new Variable(gpu.FromArray(xs, 2, 16, 8, 8), requiresGrad: true);
                using var w = new Variable(gpu.FromArray(ws, 24, 16, 3, 3), requiresGrad: true);
                using var b = new Variable(gpu.FromArray(bs, 24), requiresGrad: true);
                using var l = new Variable(gpu.FromArray(ls, 40, 24), requiresGrad: true);
                using var g = gpu.FromArray(gs, 2, 64, 40);
                float[] yv;
                using (new Graph())
                {
                    using var autocast = MixedPrecision.Bf16();
                    var h = F.Conv2d(F.Autocast(x), F.Autocast(w), b, 1, 1, MixedPrecision.Enabled);      // [2, 24, 8, 8]
                    var t = F.Permute(F.Reshape(h, 2, 24, 64), 0, 2, 1);                                   // [2, 64, 24]
                    var y = F.Linear(F.Autocast(t), F.Autocast(l), null, MixedPrecision.Enabled);           // [2, 64, 40]
                    yv = y.Data.ToArray();
                    y.Backward(g);
                }
                return (yv, x.Grad!.ToArray(), w.Grad!.ToArray(), l.Grad!.ToArray());
            }
            finally { gpu.UseTensorCores = true; }
        }

        long before = gpu.TensorCoreGemms;
        var fast = Run(true);
        Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(5), "conv forward, dx, dw and linear forward, dx, dw on tensor cores");
        var emulated = Run(false);
        AssertClose("forward", fast.y, emulated.y, 1e-4);
        AssertClose("conv dx", fast.dx, emulated.dx, 2e-2);
        AssertClose("conv dw", fast.dw, emulated.dw, 2e-2);
        AssertClose("linear dw", fast.dl, emulated.dl, 2e-2);
    }

    static void AssertClose(string what, float[] got, float[] want, double relative)
    {
        double scale = want.Max(v => Math.Abs((double)v)), worst = 0;
        for (int i = 0; i < got.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - want[i]));
        Assert.That(worst, Is.LessThanOrEqualTo(relative * scale), $"{what}: max |difference| {worst:G3} against max |value| {scale:G3}\n{TestSeed.Describe()}");
    }
}

/// <summary>The per-op profiler: ops are counted and timed forward and backward, also in the synchronising mode.</summary>
[NonParallelizable]
public class OpProfilerTests
{
    [Test]
    public void CountsAndTimesForwardAndBackwardOps()
    {
        var cpu = TestBackends.Get(BackendKind.Cpu);
        var (enabled, sync) = (OpProfiler.Enabled, OpProfiler.SynchronizeDevice);
        try
        {
            OpProfiler.Enabled = true;
            OpProfiler.SynchronizeDevice = true;
            OpProfiler.Reset();
            using var x = new Variable(cpu.FromArray([1f, -2f, 3f, 0.5f], 2, 2), requiresGrad: true);
            using var w = new Variable(cpu.FromArray([0.5f, 1f, -1f, 2f], 2, 2), requiresGrad: true);
            using (new Graph())
            {
                var y = F.Silu(F.Linear(x, w));
                F.MseLoss(y, y).Backward();
            }
            var report = OpProfiler.Report();
            Assert.That(report, Does.Contain("linear"));
            Assert.That(report, Does.Match(@"silu\s+1 calls\s+forward\s+[0-9.]+ ms\s+backward\s+[0-9.]+ ms"));
        }
        finally
        {
            (OpProfiler.Enabled, OpProfiler.SynchronizeDevice) = (enabled, sync);
            OpProfiler.Reset();
        }
    }
}
