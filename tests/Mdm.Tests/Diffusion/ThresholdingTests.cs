using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Mdm.Kernels;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.Diffusion;

/// <summary>Clip / Imagen / DeepFloyd thresholding and the clamp against float64 host computation, on every backend.</summary>
[BackendFixtures]
public class ThresholdingTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>Rows of |x| up to <paramref name="spread"/>, plus one row entirely inside [−1, 1] (its scale stays 1).</summary>
    (Tensor t, double[] r) Samples(int rows, int rowLen, float spread)
    {
        var f = TestSeed.Uniform(Rng, (long)rows * rowLen, -spread, spread);
        for (int j = 0; j < rowLen; j++) f[j] *= 0.9f / spread;
        return (B.FromArray(f, rows, 3, rowLen / 3), TestSeed.ToDouble(f));
    }

    static double[] HostDynamic(double[] x, int rows, double p, double max)
    {
        var q = Ref.QuantileAbs(x, rows, p);
        int rowLen = x.Length / rows;
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double s = Math.Clamp(q[i / rowLen], 1, max);
            y[i] = Math.Clamp(x[i], -s, s) / s;
        }
        return y;
    }

    [TestCase(ThresholdType.Dynamic, 3f)]
    [TestCase(ThresholdType.DynamicDeepFloyd, 3f)]
    [TestCase(ThresholdType.Dynamic, 250f)]
    [TestCase(ThresholdType.DynamicDeepFloyd, 1.2f)]
    public void DynamicMatchesHost(ThresholdType type, float spread)
    {
        int rows = 3, rowLen = Kind == BackendKind.IlgpuCpu ? 3 * 11 : 3 * 157;
        var (x, rx) = Samples(rows, rowLen, spread);
        using (x)
        {
            using var y = Thresholding.Apply(x, type);
            var (p, max) = type == ThresholdType.Dynamic ? (0.995, 100.0) : (0.95, 1.5);
            Compare.AssertClose($"{type} spread {spread} on {Kind}", y, HostDynamic(rx, rows, p, max), new Tolerance(1e-6, 2e-6));
            var values = y.ToArray();
            Assert.That(values.Max(Math.Abs), Is.LessThanOrEqualTo(1f), "thresholded values lie in [−1, 1]");
        }
    }

    /// <summary>ml-mdm's clip_sample on a stream with signal scale s (no SNR shift): threshold(x̂0·s)/s.</summary>
    [TestCase(ThresholdType.Dynamic)]
    [TestCase(ThresholdType.DynamicDeepFloyd)]
    public void DynamicOnAnUnshiftedStreamThresholdsTheScaledImage(ThresholdType type)
    {
        const double scale = 2;
        int rows = 3, rowLen = 3 * 13;
        var (x, rx) = Samples(rows, rowLen, 1.5f);
        using (x)
        {
            using var y = Thresholding.Apply(x, type, scale);
            var (p, max) = type == ThresholdType.Dynamic ? (0.995, 100.0) : (0.95, 1.5);
            var expected = HostDynamic(rx.Select(v => v * scale).ToArray(), rows, p, max).Select(v => v / scale).ToArray();
            Compare.AssertClose($"{type} at image scale {scale} on {Kind}", y, expected, new Tolerance(1e-6, 2e-6));
            var unscaled = HostDynamic(rx, rows, p, max);
            Assert.That(expected.Zip(unscaled).Max(e => Math.Abs(e.First - e.Second)), Is.GreaterThan(0.1), "the scale changes the result");
        }
    }

    [Test]
    public void ClipAndNoneMatchHost()
    {
        var (x, rx) = Samples(2, 3 * 17, 2.5f);
        using (x)
        {
            using var clip = Thresholding.Apply(x, ThresholdType.Clip);
            Compare.AssertClose("Clip", clip, rx.Select(v => Math.Clamp(v, -1, 1)).ToArray(), Tolerance.F32Exact);
            using var scaled = Thresholding.Apply(x, ThresholdType.Clip, imageScale: 4);
            Compare.AssertClose("Clip with image scale 4", scaled, rx.Select(v => Math.Clamp(v * 4, -1, 1) / 4).ToArray(), new Tolerance(0, 1e-7));
            using var none = Thresholding.Apply(x, ThresholdType.None);
            Compare.AssertClose("None", none, rx, Tolerance.F32Exact);
        }
    }

    [Test]
    public void ClampInPlaceKeepsNaN()
    {
        using var x = B.FromArray([-3f, -1f, 0.25f, float.NaN, 7f], 5);
        Thresholding.Clamp(x, -0.5f, 2f, x);
        var v = x.ToArray();
        Assert.That(v[..3], Is.EqualTo(new[] { -0.5f, -0.5f, 0.25f }));
        Assert.That(float.IsNaN(v[3]), "NaN stays NaN, as torch.clamp");
        Assert.That(v[4], Is.EqualTo(2f));
        Assert.That(() => Thresholding.Clamp(x, 1f, -1f), Throws.ArgumentException.With.Message.Contains("lo <= hi"));
    }

    [Test]
    public void DynamicPropagatesNaNOfItsSample()
    {
        var data = new float[] { 0.5f, 3f, -2f, float.NaN, 0.1f, -4f, 5f, 0.2f };
        using var x = B.FromArray(data, 2, 4);
        var y = Thresholding.Apply(x, ThresholdType.Dynamic).ToArray();
        Assert.That(y[..4].All(float.IsNaN), "a NaN in sample 0 poisons sample 0");
        Assert.That(y[4..].All(float.IsFinite), "sample 1 is unaffected");
    }
}


/// <summary>The thresholding kernels are custom kernels (not in the catalogue): they must compile for sm_90 too.</summary>
public class ThresholdingPtxTests
{
    [TestCase("ClampKernel")]
    [TestCase("DynamicKernel")]
    public void KernelCompilesToPtxForSm90(string method)
    {
        var info = typeof(Thresholding).GetMethod(method, System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)
            ?? throw new AssertionException($"Thresholding.{method} not found");
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_84, null!);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(info), KernelSpecialization.Empty);
        Assert.That(compiled.PTXAssembly, Does.Contain(".visible .entry " + compiled.Name));
        Assert.That(compiled.PTXAssembly, Does.Not.Contain(".extern .func"), "calls an unresolved extern function");
    }
}
