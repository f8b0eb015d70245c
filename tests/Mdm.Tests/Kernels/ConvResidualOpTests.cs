using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>
/// conv2d + bias + residual with the residual added in the convolution's epilogue (<see cref="Ops.Conv2dResidual"/>):
/// f32 and bf16 inputs against float64, odd and non-tile shapes, stride 1 and 2, outputs poisoned with NaN. On the CPU
/// accelerator the bf16 cases cover the im2col path (per-chunk residual) and the widened kernel; on CUDA also the
/// implicit GEMM's residual epilogue (both warp layouts, checked to have run).
/// </summary>
[BackendFixtures]
public class ConvResidualOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<TestCaseData> F32Cases()
    {
        yield return new Conv2dCase(2, 3, 5, 9, 9, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(2, 3, 5, 9, 9, 3, 3, 2, 2, 1, 1, true).Data();      // 9x9 -> 5x5
        yield return new Conv2dCase(2, 3, 5, 7, 11, 1, 1, 1, 1, 0, 0, false).Data();    // 1x1, no bias
        yield return new Conv2dCase(1, 4, 9, 13, 13, 3, 3, 1, 1, 1, 1, true).Data();    // no size a multiple of 8
    }

    public static IEnumerable<TestCaseData> BF16Cases()
    {
        yield return new Conv2dCase(2, 8, 24, 8, 12, 3, 3, 1, 1, 1, 1, true).Data();     // Cin·9 = 72, 96 pixels: im2col / implicit GEMM
        yield return new Conv2dCase(2, 16, 8, 16, 16, 3, 3, 2, 2, 1, 1, true).Data();    // stride 2 -> 8x8
        yield return new Conv2dCase(2, 8, 5, 9, 9, 1, 1, 1, 1, 0, 0, true).Data();       // 81 pixels: the widened fallback
    }

    (Tensor Residual, double[] Expected, double[] Magnitude) WithResidual(double[] conv, double[] abs, int[] ys)
    {
        var (residual, rr) = Input(ys);
        var expected = new double[conv.Length];
        var magnitude = new double[conv.Length];
        for (int i = 0; i < conv.Length; i++) { expected[i] = conv[i] + rr[i]; magnitude[i] = abs[i] + Math.Abs(rr[i]); }
        return (residual, expected, magnitude);
    }

    [TestCaseSource(nameof(F32Cases))]
    public void Conv2dResidualForward(Conv2dCase c)
    {
        var (x, rx) = Input(c.X);
        var (w, rw) = Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        using (x) using (w) using (b)
        {
            var conv = Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out var ys, out var abs);
            var (residual, expected, magnitude) = WithResidual(conv, abs, ys);
            using (residual)
            {
                using var y = Poisoned(ys);
                Ops.Conv2dResidual(x, w, b, residual, c.SH, c.PH, y);
                Compare.AssertClose(Name("Conv2dResidual", c.X, c.Wt), y, expected, ConvOpTests.SumTolerance(c.Cin * c.KH * c.KW + 1), magnitude);
            }
        }
    }

    [TestCaseSource(nameof(BF16Cases))]
    public void Conv2dResidualForwardBF16(Conv2dCase c)
    {
        var (x, rx) = BF16Input(c.X);
        var (w, rw) = BF16Input(c.Wt);
        var (b, rb) = Input(c.Cout);
        using (x) using (w) using (b)
        {
            var conv = Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out var ys, out var abs);
            var (residual, expected, magnitude) = WithResidual(conv, abs, ys);
            using (residual)
            {
                void Check(string route)
                {
                    using var y = Poisoned(ys);
                    Ops.Conv2dResidual(x, w, b, residual, c.SH, c.PH, y);
                    Compare.AssertClose(Name($"Conv2dResidual bf16 {route}", c.X, c.Wt), y, expected, ConvOpTests.SumTolerance(c.Cin * c.KH * c.KW + 1), magnitude);
                }
                Check("default route");
                if (B is IlgpuBackend { Kind: BackendKind.Cuda } gpu && (c.KH == 3 || c.KH == 1))
                    foreach (var variant in new[] { "implicit-narrow", "implicit-wide" })
                    {
                        gpu.ConvAlgorithm = variant;
                        long before = gpu.ImplicitGemmConvs;
                        try { Check(variant); }
                        finally { gpu.ConvAlgorithm = null; }
                        Assert.That(gpu.ImplicitGemmConvs, Is.EqualTo(before + 1), $"{variant}: the implicit GEMM ran with the residual epilogue");
                    }
            }
        }
    }

    [Test]
    public void BadResidualIsRefused()
    {
        using var x = B.Zeros(1, 2, 5, 5);
        using var w = B.Zeros(3, 2, 3, 3);
        using var wrong = B.Zeros(1, 3, 4, 5);
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2dResidual(x, w, null, wrong, 1, 1))!;
        Assert.That(e.Message, Does.StartWith("Conv2dResidual: residual is [1,3,4,5]").And.Contain("[1,3,5,5]"));
        using var residual = B.Zeros(1, 3, 5, 5);
        var alias = Assert.Throws<ArgumentException>(() => Ops.Conv2dResidual(x, w, null, residual, 1, 1, residual))!;
        Assert.That(alias.Message, Does.Contain("may not share storage with the residual"));
    }
}
