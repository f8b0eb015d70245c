using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>
/// Single blocks against apple/ml-mdm's own modules (tests/golden/block-*.safetensors, tools/mlmdm_golden.py), small
/// enough for every backend: the spatial attention (32-group norms, masked cross-attention, FFN), an lm_head block
/// (masked text self-attention + MLP) and a temporal attention block with rotary encoding. Weights load strictly;
/// output, input gradient and every parameter gradient are compared with ml-mdm's float64 run, with the tolerance of
/// <see cref="MlMdmGoldenTests"/>: |Δ| ≤ 1e-4·rms(reference) + 1e-3·|reference|.
/// </summary>
public abstract class MlMdmBlockGoldenFixture(BackendKind kind) : KernelFixture(kind)
{
    Tensor Load(SafeTensorsFile file, string name) =>
        B.FromArray(file.ReadF32(name), file.Entry(name).Shape.Select(d => (int)d).ToArray());

    static Tolerance Scaled(double[] reference) =>
        new(1e-4 * Math.Sqrt(reference.Sum(v => v * v) / Math.Max(1, reference.Length)), 1e-3);

    protected void Check(string name)
    {
        using var file = SafeTensorsFile.Open(MlMdmGoldenTests.GoldenPath(name + ".safetensors"));
        var f = ParameterFactory.On(B);
        ModelModule block = name switch
        {
            "block-attention" => new SelfAttention(f, 32, 32, 16, useFfn: true),
            "block-lm-head" => new LmHeadBlock(f, 16),
            _ => new TemporalAttentionBlock(f, 32, rotary: true),
        };
        using var x = new Variable(Load(file, "input.x"), requiresGrad: true);
        using var mask = Load(file, "input.mask");
        using var tokens = file.Contains("input.tokens") ? Load(file, "input.tokens") : null;
        try
        {
            Assert.That(StateDict.Load(block, file, new StateDictLoadOptions { SourcePrefix = "param." }).IsComplete, Is.True, "strict load");
            using var graph = new Graph();
            var y = block switch
            {
                SelfAttention a => a.Forward(x, new Variable(tokens!), mask),
                LmHeadBlock l => l.Forward(x, mask),
                TemporalAttentionBlock t => t.Forward(x, 4),
                _ => throw new InvalidOperationException(name),
            };
            var expected = TestSeed.ToDouble(file.ReadF32("output"));
            Compare.AssertClose($"{name} on {Kind}: output", y.Data, expected, Scaled(expected));
            F.Sum(F.Mul(y, new Variable(Load(file, "cotangent")))).Backward();
            var dx = TestSeed.ToDouble(file.ReadF32("grad_input.x"));
            Compare.AssertClose($"{name} on {Kind}: d/dx", x.Grad!, dx, Scaled(dx));
            var parameters = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
            foreach (var (key, p) in parameters)
            {
                var g = TestSeed.ToDouble(file.ReadF32("grad." + key));
                Compare.AssertClose($"{name} on {Kind}: d/d {key}", p.Grad!, g, Scaled(g));
            }
            Assert.That(file.Entries.Count(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)), Is.EqualTo(parameters.Count));
        }
        finally { block.DisposeParameters(); }
    }
}

[BackendFixtures]
public class MlMdmBlockGoldenTests(BackendKind kind) : MlMdmBlockGoldenFixture(kind)
{
    [TestCase("block-attention")]
    [TestCase("block-lm-head")]
    public void BlockMatchesMlMdm(string name) => Check(name);
}

/// <summary>The temporal attention block golden (rotary, t_attn layout); not on IlgpuCpu, where its stride-2 and 3×3
/// convs over 8 frames take minutes (the rotary and attention kernels run there in the op tests).</summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.Cuda)]
public class MlMdmTemporalBlockGoldenTests(BackendKind kind) : MlMdmBlockGoldenFixture(kind)
{
    [Test]
    public void TemporalBlockMatchesMlMdm() => Check("block-temporal");
}
