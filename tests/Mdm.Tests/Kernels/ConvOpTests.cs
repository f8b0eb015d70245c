using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>One conv2d configuration: x [N, Cin, H, W], weight [Cout, Cin, KH, KW], stride (SH, SW), padding (PH, PW).</summary>
public sealed record Conv2dCase(int N, int Cin, int Cout, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, bool Bias)
{
    public int[] X => [N, Cin, H, W];
    public int[] Wt => [Cout, Cin, KH, KW];
    public int[] Y => [N, Cout, Ref.ConvOutSize(H, KH, SH, PH), Ref.ConvOutSize(W, KW, SW, PW)];
    public bool Square => SH == SW && PH == PW;
    public override string ToString() =>
        $"{N}x{Cin}x{H}x{W} k{KH}x{KW} s{SH}{(SH == SW ? "" : "," + SW)} p{PH}{(PH == PW ? "" : "," + PW)} ->{Cout}{(Bias ? " bias" : "")}";

    public TestCaseData Data() => new TestCaseData(this).SetArgDisplayNames(ToString());

    /// <summary>Through the square overload when stride and padding agree on both axes (the common call), else the (H, W) one.</summary>
    public Tensor Forward(Tensor x, Tensor w, Tensor? b, Tensor y) =>
        Square ? Ops.Conv2d(x, w, b, SH, PH, y) : Ops.Conv2d(x, w, b, (SH, SW), (PH, PW), y);
    public Tensor BackwardInput(Tensor dy, Tensor w, Tensor dx) =>
        Square ? Ops.Conv2dBackwardInput(dy, w, X, SH, PH, dx) : Ops.Conv2dBackwardInput(dy, w, X, (SH, SW), (PH, PW), dx);
    public Tensor BackwardWeight(Tensor dy, Tensor x, Tensor dw) =>
        Square ? Ops.Conv2dBackwardWeight(dy, x, Wt, SH, PH, dw) : Ops.Conv2dBackwardWeight(dy, x, Wt, (SH, SW), (PH, PW), dw);
}

/// <summary>One conv1d configuration: x [N, Cin, L], weight [Cout, Cin, K].</summary>
public sealed record Conv1dCase(int N, int Cin, int Cout, int L, int K, int Stride, int Pad, bool Bias)
{
    public int[] X => [N, Cin, L];
    public int[] Wt => [Cout, Cin, K];
    public int[] Y => [N, Cout, Ref.ConvOutSize(L, K, Stride, Pad)];
    public override string ToString() => $"{N}x{Cin}x{L} k{K} s{Stride} p{Pad} ->{Cout}{(Bias ? " bias" : "")}";
    public TestCaseData Data() => new TestCaseData(this).SetArgDisplayNames(ToString());
}

/// <summary>
/// Conv2d / Conv1d forward and the three gradients (input, weight, bias) against float64 on every backend, plus the
/// argument checks. Shapes stay tiny so the ILGPU CPU accelerator runs them quickly; ConvLargeShapeTests_Cpu takes
/// the CPU backend through bigger shapes.
/// </summary>
[BackendFixtures]
public class ConvOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<TestCaseData> Conv2dCases()
    {
        yield return new Conv2dCase(2, 3, 5, 9, 9, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(2, 3, 5, 9, 9, 3, 3, 2, 2, 1, 1, true).Data();      // 9x9 -> 5x5: the last row/column of x meets one tap
        yield return new Conv2dCase(2, 3, 5, 7, 11, 1, 1, 1, 1, 0, 0, false).Data();    // 1x1: plain GEMM on the CPU
        yield return new Conv2dCase(2, 4, 8, 16, 16, 3, 3, 2, 2, 1, 1, false).Data();
        yield return new Conv2dCase(1, 3, 4, 10, 10, 3, 3, 2, 2, 1, 1, true).Data();    // 10x10 -> 5x5: the last row of x is read by no tap's centre
        yield return new Conv2dCase(2, 3, 4, 8, 7, 2, 3, 2, 1, 0, 1, true).Data();      // rectangular kernel, stride and padding per axis
        yield return new Conv2dCase(2, 4, 3, 9, 9, 1, 1, 2, 2, 0, 0, false).Data();     // 1x1 stride 2: drops odd rows/columns
    }

    public static IEnumerable<TestCaseData> Conv1dCases()
    {
        yield return new Conv1dCase(2, 3, 4, 9, 3, 1, 1, true).Data();
        yield return new Conv1dCase(2, 3, 4, 9, 3, 2, 1, false).Data();
        yield return new Conv1dCase(2, 3, 4, 113, 3, 1, 1, false).Data();
        yield return new Conv1dCase(2, 3, 4, 113, 3, 2, 1, true).Data();
        yield return new Conv1dCase(2, 3, 4, 113, 1, 1, 0, true).Data();
    }

    /// <summary>Error budget for a float32 sum of <paramref name="terms"/> products, relative to Σ|terms|.</summary>
    internal static Tolerance SumTolerance(long terms) => new(1e-6, 1e-6 + 3e-7 * Math.Sqrt(Math.Max(terms, 1)));

    // ---- conv2d -----------------------------------------------------------------------------------------------

    [TestCaseSource(nameof(Conv2dCases))]
    public void Conv2dForward(Conv2dCase c)
    {
        var (x, rx) = Input(c.X);
        var (w, rw) = Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        using (x) using (w) using (b)
        {
            var expected = Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out var ys, out var abs);
            Assert.That(ys, Is.EqualTo(c.Y));
            using var y = Poisoned(ys);
            c.Forward(x, w, b, y);
            Compare.AssertClose(Name("Conv2dForward", c.X, c.Wt), y, expected, SumTolerance(c.Cin * c.KH * c.KW), abs);
            using var allocated = c.Forward(x, w, b, null!);
            Assert.That(allocated.Shape, Is.EqualTo(ys), "output allocated by the op");
            Compare.AssertClose(Name("Conv2dForward (allocated output)", c.X, c.Wt), allocated, expected, SumTolerance(c.Cin * c.KH * c.KW), abs);
        }
    }

    // ---- conv2d in bf16 (storage bf16, accumulation and output f32; tensor cores on CUDA) -------------------------

    public static IEnumerable<TestCaseData> Conv2dBF16Cases()
    {
        yield return new Conv2dCase(2, 8, 24, 8, 12, 3, 3, 1, 1, 1, 1, true).Data();     // Cin·9 = 72 and 8·12 pixels: the tensor-core path on CUDA
        yield return new Conv2dCase(2, 16, 8, 16, 16, 3, 3, 2, 2, 1, 1, false).Data();   // stride 2 -> 8x8; Cout 8 fills a sliver of the 128-row tile
        yield return new Conv2dCase(2, 8, 5, 9, 9, 1, 1, 1, 1, 0, 0, true).Data();       // 81 pixels: not a multiple of 8, the widened fallback
    }

    /// <summary>BF16 x and weight: against float64 on the bf16-rounded values with an f32 accumulation budget.</summary>
    [TestCaseSource(nameof(Conv2dBF16Cases))]
    public void Conv2dForwardBF16(Conv2dCase c) => CheckConv2dBF16(c);

    protected void CheckConv2dBF16(Conv2dCase c, bool bf16Output = false)
    {
        var (x, rx) = BF16Input(c.X);
        var (w, rw) = BF16Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        using (x) using (w) using (b)
        {
            var expected = Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out var ys, out var abs);
            using var y = Poisoned(ys);
            c.Forward(x, w, b, y);
            var tol = SumTolerance(c.Cin * c.KH * c.KW);
            Compare.AssertClose(Name("Conv2dForward bf16", c.X, c.Wt), y, expected, tol, abs);
            if (!bf16Output) return;
            using var rounded = PoisonedBF16(ys);
            c.Forward(x, w, b, rounded);
            var bits = rounded.ToBF16Bits();
            var f32 = y.ToArray();
            for (int i = 0; i < bits.Length; i++)
                Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(f32[i])), $"{Name("Conv2dForward bf16 output", c.X, c.Wt)}: element {i} is not the rounded f32 output\n{TestSeed.Describe()}");
            var bound = new double[expected.Length];
            for (int i = 0; i < bound.Length; i++)
            {
                double e = tol.Atol + tol.Rtol * abs[i];
                bound[i] = e + Math.Pow(2, -8) * (Math.Abs(expected[i]) + e);
            }
            Compare.AssertClose(Name("Conv2dForward bf16 output vs float64", c.X, c.Wt), Array.ConvertAll(bits, BFloat16.ToFloat), expected, new Tolerance(0, 1), bound);
        }
    }

    /// <summary>
    /// A BF16 output (autocast's conv output) is the F32 output of the same call rounded once to nearest even, bit for
    /// bit; against float64 that is the f32 budget e plus half a bf16 ulp of the f32 value, at most 2^-8·(|ref| + e).
    /// </summary>
    [TestCaseSource(nameof(Conv2dBF16Cases))]
    public void Conv2dForwardBF16Output(Conv2dCase c) => CheckConv2dBF16(c, bf16Output: true);

    [Test]
    public void Conv2dBF16OutputNeedsBF16Operands()
    {
        using var x = B.Zeros(1, 2, 3, 3);
        using var w = B.Zeros(4, 2, 1, 1);
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, w, outDType: DType.BF16))!;
        Assert.That(e.Message, Does.Contain("Conv2d: a BF16 output needs BF16 x and weight, got F32 x [1,2,3,3]"));
    }

    /// <summary>BF16 dy with BF16 weight (input gradient) and BF16 x (weight gradient): against float64 on the rounded values.</summary>
    [TestCaseSource(nameof(Conv2dBF16Cases))]
    public void Conv2dBackwardBF16(Conv2dCase c) => CheckConv2dBackwardBF16(c);

    protected void CheckConv2dBackwardBF16(Conv2dCase c)
    {
        var (x, rx) = BF16Input(c.X);
        var (w, rw) = BF16Input(c.Wt);
        var (dy, rdy) = BF16Input(c.Y);
        using (x) using (w) using (dy)
        {
            using var dx = Poisoned(c.X);
            c.BackwardInput(dy, w, dx);
            var ex = Ref.Conv2dBackwardInput(rdy, rw, c.Wt, c.X, c.SH, c.SW, c.PH, c.PW, out var absX);
            Compare.AssertClose(Name("Conv2dBackwardInput bf16", c.Y, c.Wt), dx, ex, SumTolerance(c.Cout * c.KH * c.KW), absX);
            using var dw = Poisoned(c.Wt);
            c.BackwardWeight(dy, x, dw);
            var ew = Ref.Conv2dBackwardWeight(rx, c.X, rdy, c.Wt, c.SH, c.SW, c.PH, c.PW, out var absW);
            Compare.AssertClose(Name("Conv2dBackwardWeight bf16", c.X, c.Y), dw, ew, SumTolerance((long)c.N * c.Y[2] * c.Y[3]), absW);
        }
    }

    [TestCaseSource(nameof(Conv2dCases))]
    public void Conv2dBackwardInput(Conv2dCase c)
    {
        var (w, rw) = Input(c.Wt);
        var (dy, rdy) = Input(c.Y);
        using (w) using (dy)
        {
            var expected = Ref.Conv2dBackwardInput(rdy, rw, c.Wt, c.X, c.SH, c.SW, c.PH, c.PW, out var abs);
            using var dx = Poisoned(c.X);
            c.BackwardInput(dy, w, dx);
            Compare.AssertClose(Name("Conv2dBackwardInput", c.Y, c.Wt), dx, expected, SumTolerance(c.Cout * c.KH * c.KW), abs);
        }
    }

    [TestCaseSource(nameof(Conv2dCases))]
    public void Conv2dBackwardWeight(Conv2dCase c)
    {
        var (x, rx) = Input(c.X);
        var (dy, rdy) = Input(c.Y);
        using (x) using (dy)
        {
            var expected = Ref.Conv2dBackwardWeight(rx, c.X, rdy, c.Wt, c.SH, c.SW, c.PH, c.PW, out var abs);
            using var dw = Poisoned(c.Wt);
            c.BackwardWeight(dy, x, dw);
            Compare.AssertClose(Name("Conv2dBackwardWeight", c.X, c.Y), dw, expected, SumTolerance(c.N * c.Y[2] * c.Y[3]), abs);
        }
    }

    [TestCaseSource(nameof(Conv2dCases))]
    public void Conv2dBackwardBias(Conv2dCase c)
    {
        var (dy, rdy) = Input(c.Y);
        using (dy)
        {
            var expected = Ref.ConvBackwardBias(rdy, c.Y, out var abs);
            using var db = Poisoned(c.Cout);
            Ops.Conv2dBackwardBias(dy, db);
            Compare.AssertClose(Name("Conv2dBackwardBias", c.Y), db, expected, SumTolerance(c.N * c.Y[2] * c.Y[3]), abs);
        }
    }

    // ---- conv1d -----------------------------------------------------------------------------------------------

    [TestCaseSource(nameof(Conv1dCases))]
    public void Conv1dForward(Conv1dCase c)
    {
        var (x, rx) = Input(c.X);
        var (w, rw) = Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        using (x) using (w) using (b)
        {
            var expected = Ref.Conv1d(rx, c.X, rw, c.Wt, rb, c.Stride, c.Pad, out var ys, out var abs);
            Assert.That(ys, Is.EqualTo(c.Y));
            using var y = Poisoned(ys);
            Ops.Conv1d(x, w, b, c.Stride, c.Pad, y);
            Compare.AssertClose(Name("Conv1dForward", c.X, c.Wt), y, expected, SumTolerance(c.Cin * c.K), abs);
        }
    }

    [TestCaseSource(nameof(Conv1dCases))]
    public void Conv1dBackwardInput(Conv1dCase c)
    {
        var (w, rw) = Input(c.Wt);
        var (dy, rdy) = Input(c.Y);
        using (w) using (dy)
        {
            var expected = Ref.Conv1dBackwardInput(rdy, rw, c.Wt, c.X, c.Stride, c.Pad, out var abs);
            using var dx = Poisoned(c.X);
            Ops.Conv1dBackwardInput(dy, w, c.X, c.Stride, c.Pad, dx);
            Compare.AssertClose(Name("Conv1dBackwardInput", c.Y, c.Wt), dx, expected, SumTolerance(c.Cout * c.K), abs);
        }
    }

    [TestCaseSource(nameof(Conv1dCases))]
    public void Conv1dBackwardWeight(Conv1dCase c)
    {
        var (x, rx) = Input(c.X);
        var (dy, rdy) = Input(c.Y);
        using (x) using (dy)
        {
            var expected = Ref.Conv1dBackwardWeight(rx, c.X, rdy, c.Wt, c.Stride, c.Pad, out var abs);
            using var dw = Poisoned(c.Wt);
            Ops.Conv1dBackwardWeight(dy, x, c.Wt, c.Stride, c.Pad, dw);
            Compare.AssertClose(Name("Conv1dBackwardWeight", c.X, c.Y), dw, expected, SumTolerance(c.N * c.Y[2]), abs);
        }
    }

    [TestCaseSource(nameof(Conv1dCases))]
    public void Conv1dBackwardBias(Conv1dCase c)
    {
        var (dy, rdy) = Input(c.Y);
        using (dy)
        {
            var expected = Ref.ConvBackwardBias(rdy, c.Y, out var abs);
            using var db = Poisoned(c.Cout);
            Ops.Conv1dBackwardBias(dy, db);
            Compare.AssertClose(Name("Conv1dBackwardBias", c.Y), db, expected, SumTolerance(c.N * c.Y[2]), abs);
        }
    }

    // ---- bad arguments ----------------------------------------------------------------------------------------

    static void Throws(Action call, params string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(call)!;
        foreach (var m in mentions) Assert.That(e.Message, Does.Contain(m), "the message names the op and the shapes");
        TestContext.Out.WriteLine(e.Message);
    }

    [Test]
    public void Conv2dBadArguments()
    {
        using var x = B.Zeros(2, 3, 9, 9);
        using var w = B.Zeros(5, 3, 3, 3);
        using var w4 = B.Zeros(5, 4, 3, 3);
        using var b4 = B.Zeros(4);
        using var x3 = B.Zeros(3, 9, 9);
        using var tiny = B.Zeros(1, 3, 2, 2);
        using var w5 = B.Zeros(5, 3, 5, 5);
        using var dy = B.Zeros(2, 5, 9, 9);
        using var xBf16 = Ops.ToBF16(x);

        Throws(() => Ops.Conv2d(x, w4), "Conv2d", "[2,3,9,9]", "[5,4,3,3]", "input channels");
        Throws(() => Ops.Conv2d(x, w, b4, 1, 1), "Conv2d", "bias [4]", "[5,3,3,3]");
        Throws(() => Ops.Conv2d(x3, w), "Conv2d", "[3,9,9]", "rank 4");
        Throws(() => Ops.Conv2d(x, x3), "Conv2d", "weight", "[3,9,9]");
        Throws(() => Ops.Conv2d(tiny, w5, null, 1, 1), "Conv2d", "[1,3,2,2]", "[5,3,5,5]", "not positive");
        Throws(() => Ops.Conv2d(x, w, null, 0, 1), "Conv2d", "stride", "[2,3,9,9]");
        Throws(() => Ops.Conv2d(x, w, null, 1, -1), "Conv2d", "padding", "[2,3,9,9]");
        Throws(() => Ops.Conv2d(xBf16, w), "Conv2d", "BF16", "[2,3,9,9]");
        using (var wrongOut = B.Zeros(2, 5, 7, 7))
            Throws(() => Ops.Conv2d(x, w, null, 1, 1, wrongOut), "Conv2d", "[2,5,7,7]", "[2,5,9,9]");
        var other = TestBackends.Get(Kind == BackendKind.Cpu ? BackendKind.IlgpuCpu : BackendKind.Cpu);
        using (var wOther = other.Zeros(5, 3, 3, 3))
            Throws(() => Ops.Conv2d(x, wOther), "Conv2d", "different devices", "[2,3,9,9]");

        Throws(() => Ops.Conv2dBackwardInput(dy, w, [2, 3, 9, 9], 2, 1), "Conv2dBackwardInput", "dy [2,5,9,9]", "[2,5,5,5]");
        Throws(() => Ops.Conv2dBackwardInput(dy, w4, [2, 3, 9, 9], 1, 1), "Conv2dBackwardInput", "[2,3,9,9]", "[5,4,3,3]");
        Throws(() => Ops.Conv2dBackwardInput(dy, w, [3, 9, 9], 1, 1), "Conv2dBackwardInput", "[3,9,9]");
        Throws(() => Ops.Conv2dBackwardWeight(dy, x, [5, 4, 3, 3], 1, 1), "Conv2dBackwardWeight", "[2,3,9,9]", "[5,4,3,3]");
        Throws(() => Ops.Conv2dBackwardWeight(dy, x, [6, 3, 3, 3], 1, 1), "Conv2dBackwardWeight", "dy [2,5,9,9]", "[2,6,9,9]");
        Throws(() => Ops.Conv2dBackwardBias(x3), "Conv2dBackwardBias", "[3,9,9]");
        using (var wrongDb = B.Zeros(4))
            Throws(() => Ops.Conv2dBackwardBias(dy, wrongDb), "Conv2dBackwardBias", "[4]", "[5]");
    }

    [Test]
    public void Conv1dBadArguments()
    {
        using var x = B.Zeros(2, 3, 9);
        using var w = B.Zeros(4, 3, 3);
        using var w2 = B.Zeros(4, 2, 3);
        using var b5 = B.Zeros(5);
        using var x4 = B.Zeros(2, 3, 1, 9);
        using var x1 = B.Zeros(2, 3, 1);
        using var dy = B.Zeros(2, 4, 9);

        Throws(() => Ops.Conv1d(x, w2, null, 1, 1), "Conv1d", "[2,3,9]", "[4,2,3]", "input channels");
        Throws(() => Ops.Conv1d(x, w, b5, 1, 1), "Conv1d", "bias [5]", "[4,3,3]");
        Throws(() => Ops.Conv1d(x4, w), "Conv1d", "[2,3,1,9]", "rank 3");
        Throws(() => Ops.Conv1d(x1, w), "Conv1d", "[2,3,1]", "[4,3,3]", "not positive");
        Throws(() => Ops.Conv1dBackwardInput(dy, w, [2, 3, 9], 2, 1), "Conv1dBackwardInput", "dy [2,4,9]", "[2,4,5]");
        Throws(() => Ops.Conv1dBackwardWeight(dy, x, [4, 2, 3], 1, 1), "Conv1dBackwardWeight", "[2,3,9]", "[4,2,3]");
        Throws(() => Ops.Conv1dBackwardBias(x4), "Conv1dBackwardBias", "[2,3,1,9]");
    }
}

[BackendFixtures(BackendKind.IlgpuCpu)]
public class ConvChunkedTests_IlgpuCpu() : ConvOpTests(BackendKind.IlgpuCpu)
{
    /// <summary>With a column budget of one sample, the lowered bf16 convolution runs sample by sample: forward per
    /// chunk, input gradient per chunk, and the weight gradient summed across chunks.</summary>
    [Test]
    public void Conv2dBF16InSeveralChunks()
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)B;
        long saved = gpu.Im2ColBudgetBytes;
        var c = new Conv2dCase(3, 8, 16, 8, 8, 3, 3, 1, 1, 1, 1, true);
        gpu.Im2ColBudgetBytes = 4L * c.Cin * 9 * 64;   // one sample of f32 columns
        try
        {
            CheckConv2dBF16(c);
            CheckConv2dBackwardBF16(c);
        }
        finally { gpu.Im2ColBudgetBytes = saved; }
    }
}
[BackendFixtures(BackendKind.Cuda)]
public class ConvTensorCoreTests_Cuda() : ConvOpTests(BackendKind.Cuda)
{
    /// <summary>Shapes the tensor-core convolution takes, including two 128-row tiles of output channels and a
    /// 64² level; fails if the GEMM did not run on tensor cores.</summary>
    public static IEnumerable<TestCaseData> TensorCoreCases()
    {
        yield return new Conv2dCase(3, 32, 136, 16, 16, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(2, 64, 64, 32, 32, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(2, 16, 8, 16, 16, 3, 3, 2, 2, 1, 1, false).Data();
    }

    [TestCaseSource(nameof(TensorCoreCases))]
    public void Conv2dBF16OnTensorCores(Conv2dCase c)
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)B;
        long before = gpu.TensorCoreGemms;
        CheckConv2dBF16(c);
        Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(1), $"the convolution should have run on tensor cores ({gpu.TensorCoreStatus})");
        before = gpu.TensorCoreGemms;
        CheckConv2dBackwardBF16(c);
        Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(2), $"both gradients should have run on tensor cores ({gpu.TensorCoreStatus})");
    }
}

/// <summary>
/// The CPU backend on model-sized shapes (many channels, 32×32 images, batches split across workers, several GEMM
/// panels) and the implicit GEMM's corners: several taps per stride phase, a padding wider than the kernel. Too slow
/// for the ILGPU CPU accelerator.
/// </summary>
[BackendFixtures(BackendKind.Cpu)]
public class ConvLargeShapeTests_Cpu() : KernelFixture(BackendKind.Cpu)
{
    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new Conv2dCase(2, 16, 32, 32, 32, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(2, 16, 32, 33, 31, 3, 3, 2, 2, 1, 1, false).Data();
        yield return new Conv2dCase(2, 32, 48, 32, 32, 1, 1, 1, 1, 0, 0, true).Data();
        yield return new Conv2dCase(5, 64, 3, 64, 64, 3, 3, 1, 1, 1, 1, true).Data();   // K = 576: three K chunks of the GEMM
        yield return new Conv2dCase(3, 29, 18, 9, 9, 3, 3, 1, 1, 1, 1, false).Data();   // weight gradient: 3 samples on 2 workers, 81 positions (16-lane tail)
        yield return new Conv2dCase(7, 64, 33, 17, 17, 1, 1, 2, 2, 0, 0, true).Data(); // 1×1 stride 2 over 7 samples on 2 workers
        yield return new Conv2dCase(3, 5, 6, 11, 10, 5, 5, 3, 2, 2, 1, true).Data();   // implicit GEMM: 5×5 taps over 3×2 stride phases
        yield return new Conv2dCase(2, 6, 7, 9, 8, 1, 1, 1, 1, 1, 1, false).Data();    // padding wider than the kernel: the col2im input gradient
        // The transposed weight gradient (16+ output channels): 8×16 tiles, 8×32 plus an edge, two position chunks, 1×1.
        yield return new Conv2dCase(3, 7, 16, 9, 9, 3, 3, 1, 1, 1, 1, false).Data();
        yield return new Conv2dCase(2, 5, 40, 11, 113, 3, 3, 2, 2, 1, 1, true).Data();
        yield return new Conv2dCase(3, 20, 17, 9, 9, 1, 1, 1, 1, 0, 0, false).Data();
    }

    [TestCaseSource(nameof(Cases))]
    public void Conv2dForwardAndGradients(Conv2dCase c)
    {
        var (x, rx) = Input(c.X);
        var (w, rw) = Input(c.Wt);
        var (b, rb) = c.Bias ? Input(c.Cout) : (null, null);
        var (dy, rdy) = Input(c.Y);
        using (x) using (w) using (b) using (dy)
        {
            using var y = Poisoned(c.Y);
            c.Forward(x, w, b, y);
            Compare.AssertClose(Name("Conv2dForward", c.X, c.Wt), y, Ref.Conv2d(rx, c.X, rw, c.Wt, rb, c.SH, c.SW, c.PH, c.PW, out _, out var absY),
                ConvOpTests.SumTolerance(c.Cin * c.KH * c.KW), absY);

            using var dx = Poisoned(c.X);
            c.BackwardInput(dy, w, dx);
            Compare.AssertClose(Name("Conv2dBackwardInput", c.Y, c.Wt), dx, Ref.Conv2dBackwardInput(rdy, rw, c.Wt, c.X, c.SH, c.SW, c.PH, c.PW, out var absX),
                ConvOpTests.SumTolerance(c.Cout * c.KH * c.KW), absX);

            using var dw = Poisoned(c.Wt);
            c.BackwardWeight(dy, x, dw);
            Compare.AssertClose(Name("Conv2dBackwardWeight", c.X, c.Y), dw, Ref.Conv2dBackwardWeight(rx, c.X, rdy, c.Wt, c.SH, c.SW, c.PH, c.PW, out var absW),
                ConvOpTests.SumTolerance(c.N * c.Y[2] * c.Y[3]), absW);

            using var db = Poisoned(c.Cout);
            Ops.Conv2dBackwardBias(dy, db);
            Compare.AssertClose(Name("Conv2dBackwardBias", c.Y), db, Ref.ConvBackwardBias(rdy, c.Y, out var absB),
                ConvOpTests.SumTolerance(c.N * c.Y[2] * c.Y[3]), absB);
        }
    }
}

/// <summary>The float64 convolution backward passes equal central differences of the float64 forward.</summary>
public class ConvReferenceGradcheck
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();
    double[] R(long n) => TestSeed.ToDouble(TestSeed.Uniform(rng, n));

    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new Conv2dCase(2, 2, 3, 5, 5, 3, 3, 1, 1, 1, 1, true).Data();
        yield return new Conv2dCase(1, 2, 2, 5, 6, 3, 3, 2, 2, 1, 1, true).Data();
        yield return new Conv2dCase(2, 2, 2, 4, 5, 2, 3, 2, 1, 0, 1, true).Data();
    }

    [TestCaseSource(nameof(Cases))]
    public void Conv2d(Conv2dCase c)
    {
        var x = R(Ref.Numel(c.X)); var w = R(Ref.Numel(c.Wt)); var b = R(c.Cout); var dy = R(Ref.Numel(c.Y));
        Gradcheck.Check($"Conv2d.dx {c}", v => Ref.Conv2d(v, c.X, w, c.Wt, b, c.SH, c.SW, c.PH, c.PW, out _, out _), x, dy,
            Ref.Conv2dBackwardInput(dy, w, c.Wt, c.X, c.SH, c.SW, c.PH, c.PW, out _));
        Gradcheck.Check($"Conv2d.dw {c}", v => Ref.Conv2d(x, c.X, v, c.Wt, b, c.SH, c.SW, c.PH, c.PW, out _, out _), w, dy,
            Ref.Conv2dBackwardWeight(x, c.X, dy, c.Wt, c.SH, c.SW, c.PH, c.PW, out _));
        Gradcheck.Check($"Conv2d.db {c}", v => Ref.Conv2d(x, c.X, w, c.Wt, v, c.SH, c.SW, c.PH, c.PW, out _, out _), b, dy,
            Ref.ConvBackwardBias(dy, c.Y, out _));
    }

    [TestCase(7, 1)]
    [TestCase(7, 2)]
    [TestCase(8, 2)]
    public void Conv1d(int l, int stride)
    {
        var c = new Conv1dCase(2, 2, 3, l, 3, stride, 1, true);
        var x = R(Ref.Numel(c.X)); var w = R(Ref.Numel(c.Wt)); var b = R(c.Cout); var dy = R(Ref.Numel(c.Y));
        Gradcheck.Check($"Conv1d.dx {c}", v => Ref.Conv1d(v, c.X, w, c.Wt, b, stride, 1, out _, out _), x, dy,
            Ref.Conv1dBackwardInput(dy, w, c.Wt, c.X, stride, 1, out _));
        Gradcheck.Check($"Conv1d.dw {c}", v => Ref.Conv1d(x, c.X, v, c.Wt, b, stride, 1, out _, out _), w, dy,
            Ref.Conv1dBackwardWeight(x, c.X, dy, c.Wt, stride, 1, out _));
        Gradcheck.Check($"Conv1d.db {c}", v => Ref.Conv1d(x, c.X, w, c.Wt, v, stride, 1, out _, out _), b, dy,
            Ref.ConvBackwardBias(dy, c.Y, out _));
    }

    [Test]
    public void OutputSizeFollowsPyTorch()
    {
        // floor((size + 2p - k) / s) + 1, as torch.nn.Conv2d documents: 9 and 10 both give 5 at k3 s2 p1; 1x1 s2 on 9 gives 5.
        Assert.That(Ref.ConvOutSize(9, 3, 2, 1), Is.EqualTo(5));
        Assert.That(Ref.ConvOutSize(10, 3, 2, 1), Is.EqualTo(5));
        Assert.That(Ref.ConvOutSize(9, 1, 2, 0), Is.EqualTo(5));
        Assert.That(Ref.ConvOutSize(113, 3, 2, 1), Is.EqualTo(57));
        for (int size = 1; size < 20; size++)
            for (int k = 1; k <= 5; k++)
                for (int s = 1; s <= 3; s++)
                    for (int p = 0; p <= 2; p++)
                    {
                        int expected = size + 2 * p < k ? 0 : Ref.ConvOutSize(size, k, s, p);
                        Assert.That(Conv2dGeometry.OutputSize(size, k, s, p), Is.EqualTo(expected), $"size {size} k {k} s {s} p {p}");
                    }
    }
}
