using System.Globalization;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;
using Mdm.Tests.Model;

namespace Mdm.Tests.Diffusion;

/// <summary>
/// Trajectories of apple/ml-mdm's own NestedSampler (tests/golden/sampler-*.safetensors, written by
/// tools/mlmdm_golden.py) with a fake denoiser, pred_r = a_r·x_r + b_r·t/1000: the same x_T and, through the injectable
/// step noise, the same per-step noise give the same samples at every resolution. One golden is unshifted with
/// dynamic thresholding (x̂0 thresholded at the stream's image scale), one shifted with DeepFloyd thresholding and DDIM.
/// Tolerance: 2e-5 absolute (ml-mdm keeps its gammas in f32).
/// </summary>
[BackendFixtures]
public class MlMdmSamplerGoldenTests(BackendKind kind) : KernelFixture(kind)
{
    sealed class AffineTimeDenoiser(Backend backend, int[] resolutions, double[] a, double[] b) : FakeDenoiser(backend, 3, resolutions)
    {
        protected override Variable[] Predict(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning)
        {
            var outs = new Variable[noisy.Count];
            for (int r = 0; r < noisy.Count; r++)
            {
                var x = noisy[r].Data;
                int per = (int)(x.Numel / x.Dim(0));
                var values = x.ToArray();
                for (int i = 0; i < values.Length; i++)
                    values[i] = (float)(a[r] * values[i] + b[r] * timesteps[i / per] / 1000.0);
                outs[r] = Adopt(Backend.FromArray(values, x.Shape));
            }
            return outs;
        }
    }

    static double[] Numbers(string text) => text.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    [TestCase("sampler-unshifted-dynamic")]
    [TestCase("sampler-shifted-dynamic-if-ddim")]
    public void TrajectoryMatchesMlMdm(string name)
    {
        using var file = SafeTensorsFile.Open(MlMdmGoldenTests.GoldenPath(name + ".safetensors"));
        var meta = file.Metadata;
        var resolutions = Numbers(meta["resolutions"]).Select(v => (int)v).ToArray();
        int steps = int.Parse(meta["steps"], CultureInfo.InvariantCulture);
        var diffusion = new DiffusionConfig
        {
            NumDiffusionSteps = int.Parse(meta["num_diffusion_steps"], CultureInfo.InvariantCulture),
            ScheduleType = ScheduleType.DeepFloyd,
            PredictionType = PredictionType.V,
            ScheduleShifted = meta["schedule_shifted"] == "true",
            ScheduleShiftedPower = double.Parse(meta["schedule_shifted_power"], CultureInfo.InvariantCulture),
        };
        var options = new SamplerConfig
        {
            NumSteps = steps,
            DdimEta = meta["ddim_eta"] == "none" ? null : double.Parse(meta["ddim_eta"], CultureInfo.InvariantCulture),
            Threshold = meta["threshold"] switch { "DYNAMIC" => ThresholdType.Dynamic, "DYNAMIC_IF" => ThresholdType.DynamicDeepFloyd, var t => throw new InvalidDataException(t) },
        };
        var denoiser = new AffineTimeDenoiser(B, resolutions, Numbers(meta["fake_a"]), Numbers(meta["fake_b"]));
        var sampler = new Sampler(denoiser, diffusion);
        var xT = resolutions.Select((_, r) => Read(file, $"xT.{r}")).ToArray();
        int noiseCalls = 0;
        var samples = sampler.Sample(2, Conditioning.None, options, seed: 0, initialNoise: xT, stepNoise: (z, i, r) =>
        {
            z.CopyFrom(file.ReadF32($"noise.{i}.{r}"));
            noiseCalls++;
        });
        try
        {
            Assert.That(noiseCalls, Is.EqualTo(options.DdimEta == 0 ? 0 : (steps - 1) * resolutions.Length), "noise for every noisy transition");
            for (int r = 0; r < resolutions.Length; r++)
            {
                // ml-mdm's last state times the stream's image scale (unshifted), clipped, as its _postprocess does
                double scale = diffusion.ScheduleShifted ? 1 : resolutions[r] / (double)resolutions[^1];
                var expected = file.ReadF32($"x.{steps - 1}.{r}").Select(v => Math.Clamp(v * scale, -1, 1)).ToArray();
                Compare.AssertClose($"{name} on {Kind}: sample at {resolutions[r]}²", samples[r], expected, new Tolerance(2e-5, 0));
            }
            Compare.AssertClose($"{name} on {Kind}: ml-mdm's returned sample", samples[0], TestSeed.ToDouble(file.ReadF32("final")), new Tolerance(2e-5, 0));
        }
        finally
        {
            foreach (var t in xT.Concat(samples)) t.Dispose();
        }
    }

    Tensor Read(SafeTensorsFile file, string name) =>
        B.FromArray(file.ReadF32(name), file.Entry(name).Shape.Select(d => (int)d).ToArray());
}
