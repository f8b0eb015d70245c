using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The Hopper GEMM (the kernel sm_90 runs, on the emulated warpgroup primitives) against float64 on the CPU
/// accelerator: every transpose form on one ragged 64×64 tile, then two tiles along M and N with two K slices (the
/// second stage refills), separate and summed batches, both bias kinds, unaligned leading dimensions (its copy loads
/// elements), output poisoned with NaN. Error rule (FlashAttention): at most 2 × a naive bf16/f32 product's error
/// against the float64 product of the unrounded inputs, plus a floor.
/// </summary>
public class WgmmaGemmTests
{
    public record struct Case(int M, int N, int K, int Batch, bool SumBatch, int Bias);

    static IEnumerable<TestCaseData> Cases()
    {
        foreach (var form in new[] { "NN", "NT", "TN", "TT" }) yield return Data(form, new(37, 19, 27, 1, false, 0));
        yield return Data("NN", new(70, 66, 72, 1, false, 1));
        yield return Data("NT", new(20, 24, 40, 2, false, 2));
        yield return Data("TT", new(24, 16, 24, 3, true, 1));
    }

    static TestCaseData Data(string form, Case c) => new TestCaseData(form, c).SetArgDisplayNames(
        $"{form}-{c.Batch}x{c.M}x{c.N}x{c.K}{(c.SumBatch ? "-summed" : "")}-bias{c.Bias}");

    [TestCaseSource(nameof(Cases))]
    public void GemmMatchesFloat64(string form, Case c)
    {
        var rng = TestSeed.NewRandom();
        bool ta = form[0] == 'T', tb = form[1] == 'T';
        int aRows = ta ? c.K : c.M, aCols = ta ? c.M : c.K, bRows = tb ? c.N : c.K, bCols = tb ? c.K : c.N;
        int lda = aCols + 3, ldb = bCols + 1, ldc = c.N + 2;   // padded, unaligned rows: the kernel must skip the gap
        int strideA = aRows * lda, strideB = bRows * ldb, outBatch = c.SumBatch ? 1 : c.Batch, strideC = c.M * ldc;
        var fa = TestSeed.Uniform(rng, c.Batch * strideA);
        var fb = TestSeed.Uniform(rng, c.Batch * strideB);
        var fbias = TestSeed.Uniform(rng, c.Bias == 2 ? c.M : c.N);
        var abits = new ushort[fa.Length];
        var bbits = new ushort[fb.Length];
        BFloat16.FromFloat(fa, abits);
        BFloat16.FromFloat(fb, bbits);
        float[] ra = Array.ConvertAll(abits, BFloat16.ToFloat), rb = Array.ConvertAll(bbits, BFloat16.ToFloat);
        float At(float[] x, int bt, int i, int k) => x[bt * strideA + (ta ? k * lda + i : i * lda + k)];
        float Bt(float[] x, int bt, int k, int j) => x[bt * strideB + (tb ? j * ldb + k : k * ldb + j)];

        int n = outBatch * c.M * c.N;
        double[] exact = new double[n], rounded = new double[n], magnitude = new double[n];
        var naive = new float[n];
        for (int ob = 0; ob < outBatch; ob++)
            for (int i = 0; i < c.M; i++)
                for (int j = 0; j < c.N; j++)
                {
                    float bias = c.Bias == 1 ? fbias[j] : c.Bias == 2 ? fbias[i] : 0f;
                    double e = bias, r = bias, mag = Math.Abs(bias);
                    float nv = 0f;
                    int first = c.SumBatch ? 0 : ob, last = c.SumBatch ? c.Batch : ob + 1;
                    for (int bt = first; bt < last; bt++)
                        for (int k = 0; k < c.K; k++)
                        {
                            e += (double)At(fa, bt, i, k) * Bt(fb, bt, k, j);
                            double prod = (double)At(ra, bt, i, k) * Bt(rb, bt, k, j);
                            r += prod; mag += Math.Abs(prod); nv += (float)prod;
                        }
                    int o = (ob * c.M + i) * c.N + j;
                    (exact[o], rounded[o], magnitude[o], naive[o]) = (e, r, mag, nv + bias);
                }

        var acc = WarpEmulator.Accelerator;
        using var a = acc.Allocate1D(abits);
        using var b = acc.Allocate1D(bbits);
        using var biasBuf = acc.Allocate1D(fbias);
        using var cBuf = acc.Allocate1D(Enumerable.Repeat(float.NaN, outBatch * strideC).ToArray());
        int tilesM = (c.M + WgmmaGemmKernels.TileM - 1) / WgmmaGemmKernels.TileM, tilesN = (c.N + WgmmaGemmKernels.TileN - 1) / WgmmaGemmKernels.TileN;
        var args = new WgmmaGemmArgs
        {
            M = c.M, N = c.N, K = c.K, Lda = lda, Ldb = ldb, Ldc = ldc, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Batch = c.Batch, SumBatch = c.SumBatch ? 1 : 0, HasBias = c.Bias, TilesN = tilesN,
            KTiles = (c.K + WgmmaGemmKernels.TileK - 1) / WgmmaGemmKernels.TileK,
        };
        var kernel = acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>(Kernel(form));
        kernel(new KernelConfig(new Index2D(tilesM * tilesN, outBatch), new Index2D(WgmmaGemmKernels.Threads, 1),
            SharedMemoryConfig.RequestDynamic<byte>(WgmmaGemmKernels.SharedBytes)), a.View, b.View, cBuf.View, biasBuf.View, args);
        var stored = cBuf.GetAsArray1D();
        var got = new float[n];
        for (int ob = 0; ob < outBatch; ob++)
            for (int i = 0; i < c.M; i++)
            {
                Array.Copy(stored, ob * strideC + i * ldc, got, (ob * c.M + i) * c.N, c.N);
                for (int j = c.N; j < ldc; j++)
                    Assert.That(stored[ob * strideC + i * ldc + j], Is.NaN, $"wrote into the row gap at ({ob},{i},{j})");
            }

        double errKernel = 0, errNaive = 0;
        for (int i = 0; i < n; i++)
        {
            errKernel = Math.Max(errKernel, Math.Abs(got[i] - exact[i]));
            errNaive = Math.Max(errNaive, Math.Abs(naive[i] - exact[i]));
        }
        string what = $"wgmma GEMM {form} {c}";
        TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive bf16/f32 {errNaive:G3}");
        Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-5), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
        int terms = c.K * (c.SumBatch ? c.Batch : 1) + 1;
        Compare.AssertClose(what + " vs rounded inputs", got, rounded, new Tolerance(1e-6, terms * Math.Pow(2, -24)), magnitude);
    }

    static Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs> Kernel(string form) => form switch
    {
        "NN" => WgmmaGemmKernels.Gemm<OrientNN, EmulatedWarpgroupMma>,
        "NT" => WgmmaGemmKernels.Gemm<OrientNT, EmulatedWarpgroupMma>,
        "TN" => WgmmaGemmKernels.Gemm<OrientTN, EmulatedWarpgroupMma>,
        _ => WgmmaGemmKernels.Gemm<OrientTT, EmulatedWarpgroupMma>,
    };
}
