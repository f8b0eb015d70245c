using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>
/// The engine's NestedUNet against the independent float64 reference (<see cref="ReferenceMdm"/>) with the same
/// weights: forward outputs of every resolution, and a whole-network float64 gradcheck w.r.t. the noisy inputs and
/// several parameter tensors. No IlgpuCpu fixture: the whole network (hundreds of kernel launches) is too slow there;
/// the kernels themselves are checked on IlgpuCpu by their op tests.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.Cuda)]
public class GoldenModelTests(BackendKind kind) : KernelFixture(kind)
{
    sealed record Setup(UNet Model, ModelConfig Config, Variable[] Streams, int[] T, Conditioning Text, double[] Tokens, double[] Mask) : IDisposable
    {
        public void Dispose()
        {
            Model.DisposeParameters();
            foreach (var s in Streams) s.Dispose();
            ModelTestUtil.Dispose(Text);
        }
    }

    Setup Build(ModelConfig config, int batch)
    {
        var model = ModelFactory.Create(config, B, seed: (ulong)Rng.Next());
        PerturbZeroInit(model, Rng);
        var streams = RandomStreams(model, Rng, batch);
        int[] lengths = Enumerable.Range(0, batch).Select(_ => Rng.Next(1, 6)).ToArray();
        var text = RandomText(B, Rng, lengths, 5, config.TextFeatureDim);
        return new Setup(model, config, streams, RandomTimesteps(Rng, batch), text,
            TestSeed.ToDouble(text.Tokens!.ToArray()), TestSeed.ToDouble(text.TokenMask!.ToArray()));
    }

    /// <summary>The reference with the model's weights (as doubles), some replaced by <paramref name="overrides"/>.</summary>
    static ReferenceMdm Reference(Setup s, IReadOnlyDictionary<string, double[]> weights, IReadOnlyDictionary<string, double[]>? overrides = null)
    {
        var shapes = s.Model.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Shape);
        return new ReferenceMdm(s.Config, name => overrides is not null && overrides.TryGetValue(name, out var o) ? o : weights[name], name => shapes[name]);
    }

    static Dictionary<string, double[]> Weights(UNet model) =>
        model.NamedParameters().ToDictionary(p => p.Name, p => TestSeed.ToDouble(p.Value.Data.ToArray()));

    [TestCase(false)]
    [TestCase(true)]
    public void ForwardMatchesTheFloat64ReferenceAtEveryResolution(bool skipInnerInput)
    {
        var config = LoadConfig("tiny-test.json");
        if (skipInnerInput) config = config with { Nested = config.Nested! with { SkipInnerUnetInput = true } };
        using var s = Build(config, batch: 2);
        var outs = Run(s.Model, s.Streams, s.T, s.Text);
        var refOuts = Reference(s, Weights(s.Model)).Forward(s.Streams.Select(v => TestSeed.ToDouble(v.Data.ToArray())).ToArray(), [2, 2], s.T,
            new ReferenceMdm.Text(s.Tokens, 5, s.Mask), null);
        Assert.That(outs.Length, Is.EqualTo(refOuts.Length));
        for (int r = 0; r < outs.Length; r++)
        {
            Assert.That(refOuts[r].Max(Math.Abs), Is.GreaterThan(1e-2), $"resolution {s.Model.Resolutions[r]}: the reference output is ~0, the test would prove little");
            Compare.AssertClose($"{s.Model.Resolutions[r]}² output vs float64 reference", outs[r], refOuts[r], new Tolerance(1e-5, 1e-4));
        }
    }

    [Test]
    public void ClassConditionalForwardMatchesTheFloat64Reference()
    {
        var tiny = LoadConfig("tiny-test.json");
        var config = new ModelConfig
        {
            ImageSize = 16,
            Nested = tiny.Nested! with { InnerUnet = tiny.Innermost with { ConditioningFeatureDim = -1, ConditioningFeatureProjDim = -1, NumClasses = 5 } },
        };
        var model = ModelFactory.Create(config, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 3);
        try
        {
            PerturbZeroInit(model, Rng);
            int[] t = RandomTimesteps(Rng, 3), labels = [4, Conditioning.NullClass, 0];
            var outs = Run(model, streams, t, new Conditioning(ClassLabels: labels));
            var named = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
            var reference = new ReferenceMdm(config, n => TestSeed.ToDouble(named[n].Data.ToArray()), n => named[n].Shape);
            var refOuts = reference.Forward(streams.Select(v => TestSeed.ToDouble(v.Data.ToArray())).ToArray(), [3, 3], t, null, labels);
            for (int r = 0; r < outs.Length; r++)
                Compare.AssertClose($"class-conditional {model.Resolutions[r]}² output", outs[r], refOuts[r], new Tolerance(1e-5, 1e-4));
        }
        finally { model.DisposeParameters(); foreach (var v in streams) v.Dispose(); }
    }

    [Test]
    public void WholeNetworkGradientsPassTheFloat64Gradcheck()
    {
        // One sample keeps the float64 reference (≈ 50 forwards) to a few seconds.
        using var s = Build(LoadConfig("tiny-test.json"), batch: 1);
        string[] checkedParameters =
        [
            "down_blocks.0.resnets.0.conv1.weight",
            "down_blocks.1.attn.0.qkv.weight",
            "in_adapter.weight",
            "inner_unet.lm_proj.weight",
            "inner_unet.down_blocks.1.attn.0.kv_cond.weight",
            "inner_unet.up_blocks.0.resnets.1.time_layer.weight",
        ];
        var named = s.Model.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        var inputs = s.Streams.Select(v => new Variable(v.Data, requiresGrad: true)).Concat(checkedParameters.Select(n => named[n])).ToArray();
        int streams = s.Streams.Length;
        var weights = Weights(s.Model);

        Variable Engine(Variable[] v)
        {
            var outs = s.Model.Forward(v.Take(streams).ToArray(), s.T, s.Text);
            return F.Concat(outs.Select(o => F.Reshape(o, (int)o.Data.Numel)).ToList(), 0);
        }
        double[] Ref(double[][] x)
        {
            var overrides = checkedParameters.Select((n, i) => (n, x[streams + i])).ToDictionary(p => p.n, p => p.Item2);
            var outs = Reference(s, weights, overrides).Forward(x.Take(streams).ToArray(), [1, 1], s.T, new ReferenceMdm.Text(s.Tokens, 5, s.Mask), null);
            return outs.SelectMany(o => o).ToArray();
        }

        var result = Mdm.Autograd.Gradcheck.CheckAgainstReference(Engine, Ref, inputs,
            new GradcheckOptions { Eps = 1e-6, Atol = 1e-5, Rtol = 1e-3, RandomDirections = 3, Seed = (ulong)Rng.Next() });
        TestContext.Out.WriteLine(result);
        Assert.That(result.Passed, $"{result}\n{TestSeed.Describe()}");
    }
}
