using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;
using Mdm.Train.Training;

namespace Mdm.Tests.Model;

/// <summary>
/// Outputs of apple/ml-mdm's own NestedUNet / UNet (tests/golden, written by tools/mlmdm_golden.py): each golden YAML
/// goes through <c>convert</c>, the model is built from the result, ml-mdm's weights are loaded strictly (every key,
/// every shape), and the forward of every resolution, the gradients of the noisy inputs and of the text tokens (a graph
/// input through <see cref="Conditioning.DifferentiableText"/>) and the first elements of every parameter gradient of
/// Σ_r ⟨output_r, cotangent_r⟩ are compared with ml-mdm's float64 run.
/// Tolerance (f32 against float64): |Δ| ≤ 1e-4·rms(reference tensor) + 1e-3·|reference| per element, the rms floored at
/// 1e-1 of the rms of all parameter gradients (for gradients that are zero up to rounding).
/// On IlgpuCpu only xxs-unet-text runs (<see cref="MlMdmGoldenTests_IlgpuCpu"/>): every group barrier there is a
/// rendezvous of OS threads, and a network with attention (ml-mdm's attention norms need 32 channels) has too many
/// conv weight elements, each a group reduction; the attention and lm_head blocks have their own goldens there.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.Cuda)]
public class MlMdmGoldenTests(BackendKind kind) : KernelFixture(kind)
{
    public static string GoldenPath(string name)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.GetEnvironmentVariable("MDM_REPO_ROOT") ?? "/", Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, "tests", "golden", name);
                if (File.Exists(p)) return p;
            }
        throw new FileNotFoundException($"tests/golden/{name} not found above {AppContext.BaseDirectory}");
    }

    /// <summary>The golden YAML through convert, as a model config.</summary>
    public static ModelConfig Converted(string name)
    {
        var yaml = GoldenPath(name + ".yaml");
        return ModelConfig.Parse(MlMdmYaml.ToJson(File.ReadAllText(yaml), yaml));
    }

    static double Rms(IEnumerable<double> values)
    {
        double sum = 0; long n = 0;
        foreach (var v in values) { sum += v * v; n++; }
        return Math.Sqrt(sum / Math.Max(1, n));
    }

    /// <summary>1e-4 of the tensor's rms, with a floor of 1e-5 of <paramref name="floorScale"/> for elements that are
    /// (analytically) zero, such as the bias gradient of a conv that a GroupNorm follows: in f32 they come out as the
    /// cancellation noise of a long sum, about 1e-7·√N of its terms, and its size follows the conv's summation order
    /// (a floor of 1e-6 was met with no margin once the CPU conv changed order).</summary>
    static Tolerance ScaledTolerance(double[] reference, double floorScale = 0) =>
        new(1e-4 * Math.Max(Rms(reference), 1e-1 * floorScale), 1e-3);

    static double[] Doubles(SafeTensorsFile file, string name) => TestSeed.ToDouble(file.ReadF32(name));

    static Tensor Load(Backend b, SafeTensorsFile file, string name)
    {
        var e = file.Entry(name);
        return b.FromArray(file.ReadF32(name), e.Shape.Select(d => (int)d).ToArray());
    }

    [TestCase("nested2-text")]
    [TestCase("nested3-unmasked")]
    [TestCase("video-temporal")]
    [TestCase("xs-unet-text")]
    [TestCase("xxs-unet-text")]
    public void ForwardAndGradientsMatchMlMdm(string name) => CheckAgainstMlMdm(B, Kind, name);

    /// <summary>Builds the converted model of golden <paramref name="name"/> on <paramref name="b"/>, loads ml-mdm's weights
    /// strictly and compares every output and gradient.</summary>
    public static void CheckAgainstMlMdm(Backend b, BackendKind kind, string name)
    {
        using var file = SafeTensorsFile.Open(GoldenPath(name + ".safetensors"));
        var config = Converted(name);
        int frames = int.Parse(file.Metadata["frames"], System.Globalization.CultureInfo.InvariantCulture);
        if (frames > 1) config = config with { Frames = frames };
        var model = ModelFactory.Create(config, b, seed: 1);
        var streams = new List<Variable>();
        var owned = new List<Tensor>();
        Variable? tokens = null;
        try
        {
            var report = StateDict.Load(model, file, new StateDictLoadOptions { SourcePrefix = "param." });
            Assert.That(report.IsComplete, Is.True, "strict load of ml-mdm's weights");
            for (int r = 0; file.Contains($"input.x.{r}"); r++)
                streams.Add(new Variable(Load(b, file, $"input.x.{r}"), requiresGrad: true));
            var times = file.ReadF32("input.times").Select(t => (int)t).ToArray();
            var cond = Conditioning.None;
            if (file.Contains("input.tokens"))
            {
                tokens = new Variable(Load(b, file, "input.tokens"), requiresGrad: true);
                owned.Add(Load(b, file, "input.mask"));
                cond = Conditioning.DifferentiableText(tokens, owned[0]);
            }
            Assert.That(streams, Has.Count.EqualTo(model.Resolutions.Count));

            using var graph = new Graph();
            var outputs = model.Forward(streams, times, cond);
            Variable? loss = null;
            for (int r = 0; r < outputs.Length; r++)
            {
                var expected = Doubles(file, $"output.{r}");
                Compare.AssertClose($"{name} on {kind}: output {r} ({model.Resolutions[r]}²)", outputs[r].Data, expected, ScaledTolerance(expected));
                var cotangent = new Variable(Load(b, file, $"cotangent.{r}"));
                var term = F.Sum(F.Mul(outputs[r], cotangent));
                loss = loss is null ? term : F.Add(loss, term);
            }
            loss!.Backward();

            for (int r = 0; r < streams.Count; r++)
            {
                var expected = Doubles(file, $"grad_input.x.{r}");
                Compare.AssertClose($"{name} on {kind}: d loss / d x {r}", streams[r].Grad!, expected, ScaledTolerance(expected));
            }
            if (tokens is not null)
            {
                var expected = Doubles(file, "grad_input.tokens");
                Compare.AssertClose($"{name} on {kind}: d loss / d text tokens", tokens.Grad!, expected, ScaledTolerance(expected));
            }
            var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
            int compared = 0;
            double allGrads = Rms(file.Entries.Where(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)).SelectMany(e => Doubles(file, e.Name)));
            foreach (var entry in file.Entries.Where(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)))
            {
                string key = entry.Name["grad.".Length..];
                var expected = Doubles(file, entry.Name);
                var grad = parameters[key].Grad?.ToArray() ?? new float[parameters[key].Data.Numel];
                Compare.AssertClose($"{name} on {kind}: d loss / d {key}", grad.AsSpan(0, expected.Length), expected, ScaledTolerance(expected, allGrads));
                compared++;
            }
            Assert.That(compared, Is.EqualTo(parameters.Count), "every parameter's gradient is compared");
        }
        finally
        {
            foreach (var s in streams) s.Dispose();
            tokens?.Dispose();
            foreach (var t in owned) t.Dispose();
            model.DisposeParameters();
        }
    }
}

/// <summary>The whole-model golden on the ILGPU CPU accelerator: the network without attention (see <see cref="MlMdmGoldenTests"/>).</summary>
[BackendFixtures(BackendKind.IlgpuCpu)]
public class MlMdmGoldenTests_IlgpuCpu() : KernelFixture(BackendKind.IlgpuCpu)
{
    [TestCase("xxs-unet-text")]
    public void ForwardAndGradientsMatchMlMdm(string name) => MlMdmGoldenTests.CheckAgainstMlMdm(B, Kind, name);
}
