using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Diffusion;

/// <summary>
/// The loss and the sampler on a device backend agree with the CPU backend for the same seed: timesteps and the
/// Philox noise are drawn identically everywhere, so only float rounding differs. (No _Cpu fixture: it would compare
/// the CPU with itself.) Tiny shapes: the ILGPU CPU accelerator is slow.
/// </summary>
[BackendFixtures(BackendKind.IlgpuCpu, BackendKind.Cuda)]
public class DiffusionBackendTests(BackendKind kind) : KernelFixture(kind)
{
    static readonly int[] Resolutions = [4, 2];

    static (float loss, float[][] perSample) Loss(Backend backend, float[] images, int seedModel, ulong seed)
    {
        using var model = new AffineDenoiser(backend, 3, Resolutions, new Random(seedModel));
        var loss = new DiffusionLoss(model, new DiffusionConfig { MixedRatio = [1, 1], ScheduleShiftedPower = 2 });
        using var x = backend.FromArray(images, 2, 3, 4, 4);
        using var graph = new Graph();
        using var result = loss.Compute(x, Conditioning.None, seed, 5);
        result.Loss.Backward();
        return (result.Loss.Item(), result.PerSampleLosses.Select(t => t.ToArray()).ToArray());
    }

    [Test]
    public void LossMatchesTheCpuBackend()
    {
        var images = TestSeed.Uniform(Rng, 2 * 3 * 4 * 4);
        int modelSeed = Rng.Next();
        ulong seed = (ulong)Rng.NextInt64();
        var (cpuLoss, cpuPer) = Loss(TestBackends.Get(BackendKind.Cpu), images, modelSeed, seed);
        var (loss, per) = Loss(B, images, modelSeed, seed);
        Assert.That(loss, Is.EqualTo(cpuLoss).Within(1e-5 * Math.Abs(cpuLoss) + 1e-7), TestSeed.Describe());
        for (int r = 0; r < per.Length; r++)
            Compare.AssertClose($"L_r of resolution {Resolutions[r]} on {Kind}", per[r], TestSeed.ToDouble(cpuPer[r]), new Tolerance(1e-6, 1e-5));
    }

    [Test]
    public void SamplesMatchTheCpuBackend()
    {
        var options = new SamplerConfig { NumSteps = 3, Threshold = ThresholdType.Dynamic, GuidanceScale = 2 };
        var conditioning = new Conditioning(ClassLabels: [3, 1]);
        var cpu = new Sampler(new ConditionalDenoiser(TestBackends.Get(BackendKind.Cpu), 3, Resolutions), new DiffusionConfig()).Sample(2, conditioning, options, 77);
        var here = new Sampler(new ConditionalDenoiser(B, 3, Resolutions), new DiffusionConfig()).Sample(2, conditioning, options, 77);
        try
        {
            for (int r = 0; r < Resolutions.Length; r++)
                Compare.AssertClose($"samples of resolution {Resolutions[r]} on {Kind}", here[r], TestSeed.ToDouble(cpu[r].ToArray()), new Tolerance(2e-5, 1e-4));
        }
        finally { foreach (var t in cpu.Concat(here)) t.Dispose(); }
    }
}
