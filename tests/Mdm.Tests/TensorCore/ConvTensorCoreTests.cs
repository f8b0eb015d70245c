using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The implicit-GEMM convolution kernels (what CUDA runs, on the emulated warp primitives) against float64 on the CPU
/// accelerator: forward, input gradient and weight gradient × 3×3 / 1×1 × stride 1 / 2, both warp layouts, odd images,
/// channels that fill no tile, batch 1 and 3, K over several slices, both ways of loading A (cp.async runs and
/// gathers), the bias / SiLU / residual epilogue, split K; outputs poisoned with NaN (zeroed for split K, which adds). Error rule (FlashAttention): against
/// float64 on the unrounded inputs at most 2 × the error of a naive bf16-input / f32-accumulation convolution + a floor,
/// and against float64 on the rounded inputs within f32 accumulation error.
/// </summary>
public class ConvTensorCoreTests
{
    public record struct Case(ConvPass Pass, int Batch, int Cin, int Cout, int H, int W, int Kernel, int Stride, int Pad, bool Wide, bool Epilogue = false, int Splits = 1);

    static IEnumerable<TestCaseData> Cases()
    {
        var f = ConvPass.Forward; var d = ConvPass.Dgrad; var w = ConvPass.Wgrad;
        Case[] cases =
        [
            new(f, 3, 5, 7, 9, 9, 3, 1, 1, false),        // N = 243: two tiles along N; K = 45 gathered
            new(f, 1, 8, 130, 9, 9, 3, 2, 1, true),       // two tiles along M; K = 72: cp.async weights over two slices
            new(f, 3, 8, 12, 9, 9, 1, 1, 0, true, true),  // bias, SiLU and residual
            new(f, 1, 20, 9, 9, 9, 1, 2, 0, false),
            new(d, 3, 6, 7, 9, 9, 3, 1, 1, false),
            new(d, 1, 5, 16, 8, 8, 3, 2, 1, true),        // even image at stride 2: the last input row has no output row
            new(d, 1, 9, 13, 9, 9, 1, 1, 0, false),
            new(d, 3, 7, 10, 9, 9, 1, 2, 0, true),
            new(w, 3, 5, 7, 9, 9, 3, 1, 1, false, Splits: 3),   // K = 243 over four slices in three splits, dy gathered
            new(w, 1, 6, 9, 9, 9, 3, 2, 1, true),
            new(w, 3, 9, 7, 8, 8, 1, 1, 0, false, Splits: 2),   // Ho·Wo = 64: dy by cp.async, slices cross samples
            new(w, 3, 11, 6, 9, 9, 1, 2, 0, true),
        ];
        foreach (var c in cases)
            yield return new TestCaseData(c).SetArgDisplayNames(
                $"{c.Pass}-{c.Kernel}x{c.Kernel}-s{c.Stride}-{c.Batch}x{c.Cin}x{c.H}x{c.W}-to{c.Cout}-{(c.Wide ? "warps4x64x64" : "warps8x64x32")}{(c.Epilogue ? "-bias-silu-residual" : "")}{(c.Splits > 1 ? $"-split{c.Splits}" : "")}");
    }

    [TestCaseSource(nameof(Cases))]
    public void ConvMatchesFloat64(Case c)
    {
        var rng = TestSeed.NewRandom();
        int ho = Ref.ConvOutSize(c.H, c.Kernel, c.Stride, c.Pad), wo = Ref.ConvOutSize(c.W, c.Kernel, c.Stride, c.Pad);
        var g = new Conv2dGeometry
        {
            N = c.Batch, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout, KH = c.Kernel, KW = c.Kernel,
            StrideH = c.Stride, StrideW = c.Stride, PadH = c.Pad, PadW = c.Pad, Ho = ho, Wo = wo,
        };
        int[] xs = g.InputShape, ws = g.WeightShape;
        var x = TestSeed.Uniform(rng, c.Batch * c.Cin * c.H * c.W);
        var wt = TestSeed.Uniform(rng, c.Cout * c.Cin * c.Kernel * c.Kernel);
        var dy = TestSeed.Uniform(rng, c.Batch * c.Cout * ho * wo);
        var bias = TestSeed.Uniform(rng, c.Cout);
        var (xr, wr, dyr) = (RoundBF16(x, out var xBits), RoundBF16(wt, out var wBits), RoundBF16(dy, out var dyBits));

        double[] exact, rounded, magnitude;
        float[] naive;
        switch (c.Pass)
        {
            case ConvPass.Forward:
                exact = Ref.Conv2d(D(x), xs, D(wt), ws, null, c.Stride, c.Stride, c.Pad, c.Pad, out _, out _);
                rounded = Ref.Conv2d(D(xr), xs, D(wr), ws, null, c.Stride, c.Stride, c.Pad, c.Pad, out _, out magnitude);
                break;
            case ConvPass.Dgrad:
                exact = Ref.Conv2dBackwardInput(D(dy), D(wt), ws, xs, c.Stride, c.Stride, c.Pad, c.Pad, out _);
                rounded = Ref.Conv2dBackwardInput(D(dyr), D(wr), ws, xs, c.Stride, c.Stride, c.Pad, c.Pad, out magnitude);
                break;
            default:
                exact = Ref.Conv2dBackwardWeight(D(x), xs, D(dy), ws, c.Stride, c.Stride, c.Pad, c.Pad, out _);
                rounded = Ref.Conv2dBackwardWeight(D(xr), xs, D(dyr), ws, c.Stride, c.Stride, c.Pad, c.Pad, out magnitude);
                break;
        }
        naive = NaiveF32(c.Pass, g, xr, wr, dyr);
        var residual = TestSeed.Uniform(rng, exact.Length);
        if (c.Epilogue)
        {
            int hw = ho * wo;
            for (int i = 0; i < exact.Length; i++)
            {
                int co = i / hw % c.Cout;
                exact[i] = Silu(exact[i] + bias[co]) + residual[i];
                rounded[i] = Silu(rounded[i] + bias[co]) + residual[i];
                naive[i] = (float)Silu(naive[i] + bias[co]) + residual[i];
                magnitude[i] += Math.Abs(bias[co]) + Math.Abs(residual[i]);
            }
        }

        var acc = WarpEmulator.Accelerator;
        var (aBits, bBits) = c.Pass switch
        {
            ConvPass.Forward => (wBits, xBits),
            ConvPass.Dgrad => (wBits, dyBits),
            _ => (dyBits, xBits),
        };
        using var aBuf = acc.Allocate1D(aBits);
        using var bBuf = acc.Allocate1D(bBits);
        using var biasBuf = acc.Allocate1D(bias);
        using var resBuf = acc.Allocate1D(residual);
        // Split K adds into a zeroed output (the host zeroes it); otherwise every element must be written.
        using var yBuf = acc.Allocate1D(Enumerable.Repeat(c.Splits > 1 ? 0f : float.NaN, exact.Length).ToArray());
        var p = ConvTensorCoreKernels.Args(c.Pass, g, WarpEmulator.Address(aBuf));
        p.Splits = c.Splits;
        if (c.Epilogue) { p.HasBias = 1; p.Silu = 1; p.HasResidual = 1; }
        bool expectAsync = c.Pass == ConvPass.Forward ? p.K % 8 == 0 : c.Pass == ConvPass.Wgrad && ho * wo % 8 == 0;
        Assert.That(p.AsyncA, Is.EqualTo(expectAsync ? 1 : 0), "A's load path");
        var kernel = acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>(Kernel(c.Pass, c.Wide));
        kernel(new KernelConfig(new Index2D(ConvTensorCoreKernels.Groups(p), c.Splits), new Index2D(c.Wide ? 128 : 256, 1),
            SharedMemoryConfig.RequestDynamic<byte>(ConvTensorCoreKernels.SharedBytes)), aBuf.View, bBuf.View, yBuf.View, biasBuf.View, resBuf.View, p);
        var got = yBuf.GetAsArray1D();

        double errKernel = 0, errNaive = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            errKernel = Math.Max(errKernel, Math.Abs(got[i] - exact[i]));
            errNaive = Math.Max(errNaive, Math.Abs(naive[i] - exact[i]));
        }
        string what = $"implicit-GEMM conv {c} (M {p.M}, N {p.N}, K {p.K}, A by {(p.AsyncA != 0 ? "cp.async" : "gather")})";
        TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive bf16/f32 {errNaive:G3}");
        Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-5), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
        Compare.AssertClose(what + " vs rounded inputs", got, rounded, new Tolerance(1e-6, (p.K + 2) * Math.Pow(2, -24)), magnitude);
    }

    static Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvGemmArgs> Kernel(ConvPass pass, bool wide) => (pass, wide) switch
    {
        (ConvPass.Forward, false) => ConvTensorCoreKernels.Conv<ConvForward, EightWarps64x32, EmulatedWarpMma>,
        (ConvPass.Forward, true) => ConvTensorCoreKernels.Conv<ConvForward, FourWarps64x64, EmulatedWarpMma>,
        (ConvPass.Dgrad, false) => ConvTensorCoreKernels.Conv<ConvDgrad, EightWarps64x32, EmulatedWarpMma>,
        (ConvPass.Dgrad, true) => ConvTensorCoreKernels.Conv<ConvDgrad, FourWarps64x64, EmulatedWarpMma>,
        (_, false) => ConvTensorCoreKernels.Conv<ConvWgrad, EightWarps64x32, EmulatedWarpMma>,
        _ => ConvTensorCoreKernels.Conv<ConvWgrad, FourWarps64x64, EmulatedWarpMma>,
    };

    static IEnumerable<TestCaseData> Bf16OutputCases()
    {
        var f = ConvPass.Forward;
        Case[] cases =
        [
            new(f, 3, 5, 7, 9, 9, 3, 1, 1, false),        // gathered A, two tiles along N
            new(f, 1, 8, 130, 9, 9, 3, 2, 1, true),       // two tiles along M, cp.async weights
            new(f, 3, 8, 12, 9, 9, 1, 1, 0, true, true),  // bias, SiLU and residual before the rounding
        ];
        foreach (var c in cases)
            yield return new TestCaseData(c).SetArgDisplayNames(
                $"bf16 out {c.Kernel}x{c.Kernel}-s{c.Stride}-{c.Batch}x{c.Cin}x{c.H}x{c.W}-to{c.Cout}-{(c.Wide ? "warps4x64x64" : "warps8x64x32")}{(c.Epilogue ? "-bias-silu-residual" : "")}");
    }

    /// <summary>
    /// The forward with a bf16 output (autocast's conv output on CUDA): every element written (NaN poison) and equal, bit
    /// for bit, to the f32 kernel's output on the same inputs rounded to nearest even (that output is held to float64 by
    /// <see cref="ConvMatchesFloat64"/>), epilogue included.
    /// </summary>
    [TestCaseSource(nameof(Bf16OutputCases))]
    public void ConvBf16OutputIsTheRoundedF32Output(Case c)
    {
        var rng = TestSeed.NewRandom();
        int ho = Ref.ConvOutSize(c.H, c.Kernel, c.Stride, c.Pad), wo = Ref.ConvOutSize(c.W, c.Kernel, c.Stride, c.Pad);
        var g = new Conv2dGeometry
        {
            N = c.Batch, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout, KH = c.Kernel, KW = c.Kernel,
            StrideH = c.Stride, StrideW = c.Stride, PadH = c.Pad, PadW = c.Pad, Ho = ho, Wo = wo,
        };
        RoundBF16(TestSeed.Uniform(rng, c.Batch * c.Cin * c.H * c.W), out var xBits);
        RoundBF16(TestSeed.Uniform(rng, c.Cout * c.Cin * c.Kernel * c.Kernel), out var wBits);
        var bias = TestSeed.Uniform(rng, c.Cout);
        int outputs = c.Batch * c.Cout * ho * wo;
        var residual = TestSeed.Uniform(rng, outputs);
        var acc = WarpEmulator.Accelerator;
        using var aBuf = acc.Allocate1D(wBits);
        using var bBuf = acc.Allocate1D(xBits);
        using var biasBuf = acc.Allocate1D(bias);
        using var resBuf = acc.Allocate1D(residual);
        using var wide = acc.Allocate1D(Enumerable.Repeat(float.NaN, outputs).ToArray());
        using var narrow = acc.Allocate1D(Enumerable.Repeat(BFloat16.FromFloat(float.NaN), outputs).ToArray());
        var p = ConvTensorCoreKernels.Args(ConvPass.Forward, g, WarpEmulator.Address(aBuf));
        if (c.Epilogue) { p.HasBias = 1; p.Silu = 1; p.HasResidual = 1; }
        var cfg = new KernelConfig(new Index2D(ConvTensorCoreKernels.Groups(p), 1), new Index2D(c.Wide ? 128 : 256, 1),
            SharedMemoryConfig.RequestDynamic<byte>(ConvTensorCoreKernels.SharedBytes));
        acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>(Kernel(ConvPass.Forward, c.Wide))(
            cfg, aBuf.View, bBuf.View, wide.View, biasBuf.View, resBuf.View, p);
        Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ConvGemmArgs> bf16Kernel = c.Wide
            ? ConvTensorCoreKernels.ConvBF16Out<ConvForward, FourWarps64x64, EmulatedWarpMma>
            : ConvTensorCoreKernels.ConvBF16Out<ConvForward, EightWarps64x32, EmulatedWarpMma>;
        acc.LoadStreamKernel(bf16Kernel)(cfg, aBuf.View, bBuf.View, narrow.View, biasBuf.View, resBuf.View, p);
        var f32 = wide.GetAsArray1D();
        var bits = narrow.GetAsArray1D();
        Assert.That(f32.All(float.IsFinite), $"f32 output of {c}: an element was left unwritten\n{TestSeed.Describe()}");
        for (int i = 0; i < outputs; i++)
            Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(f32[i])), $"bf16 output of {c}: element {i} is not the rounded f32 output\n{TestSeed.Describe()}");
    }

    static double Silu(double v) => v / (1 + Math.Exp(-v));

    static double[] D(float[] v) => TestSeed.ToDouble(v);

    static float[] RoundBF16(float[] v, out ushort[] bits)
    {
        bits = new ushort[v.Length];
        BFloat16.FromFloat(v, bits);
        return Array.ConvertAll(bits, BFloat16.ToFloat);
    }

    /// <summary>The pass with f32 accumulation over the rounded inputs, one tap at a time (the naive baseline).</summary>
    static float[] NaiveF32(ConvPass pass, in Conv2dGeometry g, float[] x, float[] w, float[] dy)
    {
        var y = new float[pass switch { ConvPass.Forward => g.N * g.Cout * g.Ho * g.Wo, ConvPass.Dgrad => x.Length, _ => w.Length }];
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
                for (int oh = 0; oh < g.Ho; oh++)
                    for (int ow = 0; ow < g.Wo; ow++)
                    {
                        int yi = ((n * g.Cout + co) * g.Ho + oh) * g.Wo + ow;
                        for (int ci = 0; ci < g.Cin; ci++)
                            for (int kh = 0; kh < g.KH; kh++)
                                for (int kw = 0; kw < g.KW; kw++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + kh, iw = ow * g.StrideW - g.PadW + kw;
                                    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                    int xi = ((n * g.Cin + ci) * g.H + ih) * g.W + iw, wi = ((co * g.Cin + ci) * g.KH + kh) * g.KW + kw;
                                    switch (pass)
                                    {
                                        case ConvPass.Forward: y[yi] += x[xi] * w[wi]; break;
                                        case ConvPass.Dgrad: y[xi] += dy[yi] * w[wi]; break;
                                        default: y[wi] += dy[yi] * x[xi]; break;
                                    }
                                }
                    }
        return y;
    }
}
