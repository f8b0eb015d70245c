using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.Tuning;
using Mdm.Tests.Harness;
using Mdm.Tests.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// On a GPU: bf16 convolutions with <see cref="IlgpuBackend.ConvAlgorithm"/> forced to each implicit-GEMM variant take
/// the implicit-GEMM kernels for the forward and both gradients (3×3 and 1×1, stride 1 and 2, a 64-channel 32² level,
/// two tiles of output channels, split K in the weight gradient) and match float64 on the bf16-rounded inputs.
/// Fails if the route did not run.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class ConvImplicitGemmTests_Cuda() : KernelFixture(BackendKind.Cuda)
{
    static IEnumerable<TestCaseData> Cases()
    {
        Conv2dCase[] shapes =
        [
            new(2, 64, 64, 32, 32, 3, 3, 1, 1, 1, 1, true),
            new(3, 32, 136, 16, 16, 3, 3, 1, 1, 1, 1, false),
            new(2, 16, 8, 17, 17, 3, 3, 2, 2, 1, 1, true),
            new(2, 24, 40, 16, 16, 1, 1, 1, 1, 0, 0, true),
            new(1, 8, 16, 9, 9, 1, 1, 2, 2, 0, 0, false),
        ];
        foreach (var variant in new[] { ConvVariant.ImplicitNarrow, ConvVariant.ImplicitWide })
            foreach (var c in shapes)
                yield return new TestCaseData(c, variant).SetArgDisplayNames($"{variant}-{c.N}x{c.Cin}x{c.H}x{c.W}-to{c.Cout}-{c.KH}x{c.KW}-s{c.SH}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Conv2dBF16ImplicitGemm(Conv2dCase c, string variant)
    {
        var gpu = (IlgpuBackend)B;
        var (x, rx) = BF16Input(c.X);
        var (w, rw) = BF16Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        var (dy, rdy) = BF16Input(c.Y);
        using (x) using (w) using (b) using (dy)
        {
            using var y = Poisoned(c.Y);
            using var dx = Poisoned(c.X);
            using var dw = Poisoned(c.Wt);
            long before = gpu.ImplicitGemmConvs;
            gpu.ConvAlgorithm = variant;
            try
            {
                c.Forward(x, w, b, y);
                c.BackwardInput(dy, w, dx);
                c.BackwardWeight(dy, x, dw);
            }
            finally { gpu.ConvAlgorithm = null; }
            Assert.That(gpu.ImplicitGemmConvs - before, Is.EqualTo(3), "forward, input and weight gradient should have run as implicit GEMM");
            Compare.AssertClose(Name("implicit-GEMM conv forward", c.X, c.Wt), y, Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out _, out var absY),
                ConvOpTests.SumTolerance(c.Cin * c.KH * c.KW), absY);
            Compare.AssertClose(Name("implicit-GEMM conv dgrad", c.Y, c.Wt), dx, Ref.Conv2dBackwardInput(rdy, rw, c.Wt, c.X, c.SH, c.SW, c.PH, c.PW, out var absX),
                ConvOpTests.SumTolerance(c.Cout * c.KH * c.KW), absX);
            Compare.AssertClose(Name("implicit-GEMM conv wgrad", c.X, c.Y), dw, Ref.Conv2dBackwardWeight(rx, c.X, rdy, c.Wt, c.SH, c.SW, c.PH, c.PW, out var absW),
                ConvOpTests.SumTolerance((long)c.N * c.Y[2] * c.Y[3]), absW);
        }
    }
}

/// <summary>
/// On a GPU: the forward with a BF16 output (autocast's conv output) takes the implicit GEMM's bf16 epilogue under each
/// forced variant, and is the same call's F32 output rounded once, bit for bit (that output is held to float64 above).
/// Fails if the route did not run.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class ConvImplicitGemmBf16OutputTests_Cuda() : KernelFixture(BackendKind.Cuda)
{
    static IEnumerable<TestCaseData> Cases()
    {
        Conv2dCase[] shapes =
        [
            new(2, 64, 64, 32, 32, 3, 3, 1, 1, 1, 1, true),
            new(2, 16, 8, 17, 17, 3, 3, 2, 2, 1, 1, true),
            new(1, 8, 16, 9, 9, 1, 1, 2, 2, 0, 0, false),
        ];
        foreach (var variant in new[] { ConvVariant.ImplicitNarrow, ConvVariant.ImplicitWide })
            foreach (var c in shapes)
                yield return new TestCaseData(c, variant).SetArgDisplayNames($"{variant}-{c.N}x{c.Cin}x{c.H}x{c.W}-to{c.Cout}-{c.KH}x{c.KW}-s{c.SH}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Conv2dBF16OutputImplicitGemm(Conv2dCase c, string variant)
    {
        var gpu = (IlgpuBackend)B;
        var (x, _) = BF16Input(c.X);
        var (w, _) = BF16Input(c.Wt);
        var (b, _) = c.Bias ? Input(c.Cout) : (null, null);
        using (x) using (w) using (b)
        {
            using var y = PoisonedBF16(c.Y);
            using var wide = Poisoned(c.Y);
            gpu.ConvAlgorithm = variant;
            try
            {
                long before = gpu.ImplicitGemmConvs;
                c.Forward(x, w, b, y);
                Assert.That(gpu.ImplicitGemmConvs - before, Is.EqualTo(1), "the bf16-output forward should have run as implicit GEMM");
                c.Forward(x, w, b, wide);
            }
            finally { gpu.ConvAlgorithm = null; }
            var bits = y.ToBF16Bits();
            var f32 = wide.ToArray();
            for (int i = 0; i < bits.Length; i++)
                Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(f32[i])), $"{Name("implicit-GEMM conv bf16 output", c.X, c.Wt)}: element {i}\n{TestSeed.Describe()}");
        }
    }
}

/// <summary>
/// <see cref="IlgpuBackend.ConvAlgorithm"/> off CUDA: an unknown variant is refused with one line naming it; a forced
/// implicit-GEMM variant on the CPU accelerator (no tensor cores) leaves the convolution on the im2col path, still
/// correct, and counts no implicit-GEMM launch.
/// </summary>
[BackendFixtures(BackendKind.IlgpuCpu)]
public class ConvAlgorithmTests_IlgpuCpu() : KernelFixture(BackendKind.IlgpuCpu)
{
    [Test]
    public void UnknownVariantIsRefused()
    {
        var gpu = (IlgpuBackend)B;
        var e = Assert.Throws<ArgumentException>(() => gpu.ConvAlgorithm = "winograd")!;
        Assert.That(e.Message, Does.StartWith("ConvAlgorithm: unknown variant 'winograd' (expected im2col, implicit-narrow, implicit-wide or null)"));
        Assert.That(gpu.ConvAlgorithm, Is.Null);
    }

    [Test]
    public void ImplicitGemmWithoutTensorCoresFallsBack()
    {
        var gpu = (IlgpuBackend)B;
        var c = new Conv2dCase(1, 8, 8, 4, 4, 3, 3, 1, 1, 1, 1, true);
        var (x, rx) = BF16Input(c.X);
        var (w, rw) = BF16Input(c.Wt);
        var (b, rb) = Input(c.Cout);
        using (x) using (w) using (b)
        {
            using var y = Poisoned(c.Y);
            long before = gpu.ImplicitGemmConvs;
            gpu.ConvAlgorithm = ConvVariant.ImplicitWide;
            try { c.Forward(x, w, b, y); }
            finally { gpu.ConvAlgorithm = null; }
            Assert.That(gpu.ImplicitGemmConvs, Is.EqualTo(before));
            Compare.AssertClose(Name("conv forward, implicit GEMM forced without tensor cores", c.X, c.Wt), y,
                Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out _, out var absY), ConvOpTests.SumTolerance(c.Cin * c.KH * c.KW), absY);
        }
    }
}
