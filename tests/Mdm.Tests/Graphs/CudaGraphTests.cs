using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Graphs;

/// <summary>
/// The sampler with <see cref="Sampler.UseGraphs"/> gives the samples of the eager sampler. On CUDA the denoiser call is
/// captured once and replayed at every step (the time embedding recomputed per replay); on the CPU backend it falls
/// back with exactly one logged line naming the reason.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.Cuda)]
public class SamplerGraphTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void GraphSamplesEqualEagerSamples()
    {
        var config = LoadConfig("cpu-demo.json");
        var model = ModelFactory.Create(config, B, seed: (ulong)Rng.Next());
        try
        {
            var cond = new Conditioning(ClassLabels: [1, 0]);
            var options = new SamplerConfig { NumSteps = 3, GuidanceScale = 2 };
            ulong seed = (ulong)Rng.Next();
            var eager = new Sampler(model, new DiffusionConfig());
            var lines = new List<string>();
            var graphed = new Sampler(model, new DiffusionConfig()) { UseGraphs = true, GraphLog = lines.Add };
            var expected = eager.Sample(2, cond, options, seed);
            var actual = graphed.Sample(2, cond, options, seed);
            for (int r = 0; r < expected.Length; r++)
            {
                Compare.AssertClose($"sample at resolution {model.Resolutions[r]} on {B.Info.KindName}", actual[r],
                    Array.ConvertAll(expected[r].ToArray(), v => (double)v), new Tolerance(1e-6, 1e-5));
                expected[r].Dispose();
                actual[r].Dispose();
            }
            var graphs = graphed.LastGraphs!;
            if (Kind == BackendKind.Cuda)
            {
                Assert.That(lines, Is.Empty, "captured without a fallback");
                Assert.That((graphs.Captures, graphs.Replays), Is.EqualTo((1, 3)), "one capture, one replay per step");
            }
            else
            {
                Assert.That(lines, Has.Count.EqualTo(1));
                Assert.That(lines[0], Does.Contain("runs eagerly").And.Contain(B.CaptureUnsupported!));
                Assert.That((graphs.Captures, graphs.Replays), Is.EqualTo((0, 0)));
            }
        }
        finally { model.DisposeParameters(); }
    }
}

/// <summary>
/// Capture and replay through the driver API on a GPU: a chain of ops with a per-replay upload matches the same chain
/// run eagerly, replay after replay with new inputs; work a graph cannot hold (a host read, a new device allocation,
/// a tensor outliving the region) is refused with the reason and the backend keeps working.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class CudaGraphTests_Cuda() : KernelFixture(BackendKind.Cuda)
{
    static void Chain(Tensor x, Tensor w, Tensor y, Func<float[]> bias, int n)
    {
        using var b = x.Backend.FromArrayPerReplay(bias, 1, n);
        using var h = Ops.MatMul(x, w);
        using var hb = Ops.Add(h, b);
        using var s = Ops.Silu(hb);
        Ops.Scale(s, 0.5f, y);
    }

    [Test]
    public void ReplayMatchesEagerWithNewInputs()
    {
        const int m = 9, k = 13, n = 11;
        using var x = B.Empty(m, k);
        using var w = Upload(TestSeed.Uniform(Rng, k * n), k, n);
        using var y = Poisoned(m, n);
        float[] bias = TestSeed.Uniform(Rng, n);
        x.CopyFrom(TestSeed.Uniform(Rng, m * k));
        using (var warm = B.Empty(m, n)) Chain(x, w, warm, () => bias, n);
        using var graph = B.Capture(() => Chain(x, w, y, () => bias, n), out var whyNot);
        Assert.That(graph, Is.Not.Null, whyNot);
        Assert.That(graph!.Launches, Is.GreaterThanOrEqualTo(4), "matmul, add, silu, scale");
        Assert.That(graph.Uploads, Is.EqualTo(1), "the bias");
        for (int replay = 0; replay < 3; replay++)
        {
            x.CopyFrom(TestSeed.Uniform(Rng, m * k));
            bias = TestSeed.Uniform(Rng, n);
            Ops.Fill(y, float.NaN);
            graph.Replay();
            using var expected = B.Empty(m, n);
            Chain(x, w, expected, () => bias, n);
            Compare.AssertClose($"replay {replay}", y, Array.ConvertAll(expected.ToArray(), v => (double)v), new Tolerance(1e-6, 1e-5));
        }
    }

    [Test]
    public void UncapturableWorkIsRefusedWithTheReason()
    {
        using var x = Upload(TestSeed.Uniform(Rng, 64), 64);
        using (var warm = Ops.Scale(x, 2f)) { }
        Assert.That(B.Capture(() => { using var t = Ops.Scale(x, 2f); t.ToArray(); }, out var read), Is.Null);
        Assert.That(read, Does.Contain("read of").And.Contain("back to the host"));
        Assert.That(B.Capture(() => { using var t = B.Empty(3, 1000, 1000); }, out var alloc), Is.Null);
        Assert.That(alloc, Does.Contain("device allocation"));
        Tensor? kept = null;
        Assert.That(B.Capture(() => kept = Ops.Scale(x, 2f), out var escaped), Is.Null);
        kept!.Dispose();
        Assert.That(escaped, Does.Contain("still in use"));
        using var after = Ops.Scale(x, 3f);   // the backend still works eagerly
        Compare.AssertClose("eager after refusals", after, Array.ConvertAll(x.ToArray(), v => 3.0 * v), Tolerance.F32Elementwise);
    }

    [Test]
    public void MaskedTextConditioningFallsBack()
    {
        var config = LoadConfig("tiny-test.json");
        var model = ModelFactory.Create(config, B, seed: 3);
        try
        {
            var lines = new List<string>();
            var text = RandomText(B, Rng, [2, 3], 5, 6);
            var sampler = new Sampler(model, new DiffusionConfig()) { UseGraphs = true, GraphLog = lines.Add };
            foreach (var t in sampler.Sample(2, text, new SamplerConfig { NumSteps = 2 }, 1)) t.Dispose();
            text.Tokens!.Dispose();
            text.TokenMask!.Dispose();
            Assert.That(lines, Has.Count.EqualTo(1));
            Assert.That(lines[0], Does.Contain("back to the host"), "the masked pooling reads the token mask");
        }
        finally { model.DisposeParameters(); }
    }
}
