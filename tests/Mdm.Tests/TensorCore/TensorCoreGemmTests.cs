using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The tensor-core GEMM (the kernel CUDA runs, on the emulated warp primitives) against float64 on the CPU
/// accelerator: every transpose form × both warp layouts, and the short-K tiles (128×128×32 and 64×128×32, 4 stages)
/// in every form with the narrow warps; one or two block tiles with ragged edges, padded leading
/// dimensions, batches (separate and summed), both bias kinds, output poisoned with NaN; with an f32 C and with a bf16
/// C (16-byte stores on an aligned C, element stores on ragged edges and unaligned rows). Error rule (FlashAttention):
/// against the float64 product of the unrounded inputs, at most 2 × the error of a naive bf16/f32 product (rounded to
/// bf16 too for a bf16 C) + a floor.
/// </summary>
public class TensorCoreGemmTests
{
    /// <summary>BF16Out: C is bf16; AlignedC: its rows are padded to a multiple of 8 values (16-byte stores), else to
    /// N + 2 (element stores only). SplitSlices &gt; 0: split-K, pieces of that many K slices adding into a zeroed C.
    /// TileM, TileK: the block tile (<see cref="IGemmTile"/>).</summary>
    public record struct Case(int M, int N, int K, int Batch, bool SumBatch, int Bias, bool BF16Out = false, bool AlignedC = false, int SplitSlices = 0,
        int TileM = MatmulTensorCoreKernels.TileM, int TileK = MatmulTensorCoreKernels.TileK)
    {
        public readonly int Stages => TileK == MatmulTensorCoreKernels.TileK ? MatmulTensorCoreKernels.Stages : 4;
    }

    static IEnumerable<TestCaseData> Cases()
    {
        // Every form and layout: one ragged tile. Then two tiles along M and along N, two K slices (the pipeline
        // refills a stage), separate and summed batches and both bias kinds, spread over forms and layouts.
        foreach (var wide in new[] { false, true })
            foreach (var form in new[] { "NN", "NT", "TN", "TT" })
                yield return Data(form, wide, new(37, 19, 27, 1, false, 0));
        yield return Data("NN", false, new(136, 12, 24, 1, false, 1));
        yield return Data("TN", true, new(12, 136, 16, 1, false, 0));
        yield return Data("NT", false, new(20, 24, 72, 2, false, 2));
        yield return Data("TT", true, new(24, 16, 24, 3, true, 1));

        // bf16 C: every form and layout on one ragged tile with aligned rows (16-byte chunks plus a ragged one), then
        // unaligned rows, two tiles each way, batches and both bias kinds.
        foreach (var wide in new[] { false, true })
            foreach (var form in new[] { "NN", "NT", "TN", "TT" })
                yield return Data(form, wide, new(37, 19, 27, 1, false, 0, BF16Out: true, AlignedC: true));
        yield return Data("NN", true, new(37, 19, 27, 1, false, 1, BF16Out: true));
        yield return Data("NT", false, new(136, 20, 24, 1, false, 1, BF16Out: true, AlignedC: true));
        yield return Data("TN", true, new(12, 136, 72, 2, false, 2, BF16Out: true, AlignedC: true));
        yield return Data("TT", false, new(24, 16, 24, 3, true, 2, BF16Out: true, AlignedC: true));

        // Split-K: pieces of one slice (the last with a ragged K), pieces that start inside a summed batch, and
        // several pieces per output batch.
        yield return Data("NN", false, new(20, 24, 200, 1, false, 0, SplitSlices: 1));
        yield return Data("TT", false, new(24, 16, 72, 3, true, 0, SplitSlices: 3));
        yield return Data("TN", true, new(12, 136, 130, 2, false, 0, SplitSlices: 2));
        yield return Data("NT", true, new(37, 19, 27, 1, false, 0, SplitSlices: 1));

        // Short-K tiles, 8 warps of 64×32 (128×128×32) or 4 (64×128×32): every form with an f32 C over two 64-row
        // blocks and two 32-deep slices (the second ragged), and with a bf16 C; then 8 slices through the 4 stages
        // (two summed batches of 4, the ring wraps) with bias, two blocks along N, and an unaligned bf16 C.
        foreach (int tileM in new[] { 128, 64 })
        {
            foreach (var form in new[] { "NN", "NT", "TN", "TT" })
            {
                yield return Data(form, false, new(70, 19, 45, 1, false, 0, TileM: tileM, TileK: 32));
                yield return Data(form, false, new(37, 19, 27, 1, false, 0, BF16Out: true, AlignedC: true, TileM: tileM, TileK: 32));
            }
            yield return Data("NT", false, new(20, 24, 100, 2, true, 1, TileM: tileM, TileK: 32));
            yield return Data("TN", false, new(12, 136, 40, 1, false, 2, BF16Out: true, AlignedC: true, TileM: tileM, TileK: 32));
            yield return Data("NN", false, new(70, 12, 24, 2, false, 1, BF16Out: true, TileM: tileM, TileK: 32));
        }
    }

    static TestCaseData Data(string form, bool wide, Case c) => new TestCaseData(form, wide, c).SetArgDisplayNames(
        $"{form}-{(wide ? "warps4x64x64" : "warps8x64x32")}-{c.Batch}x{c.M}x{c.N}x{c.K}{(c.SumBatch ? "-summed" : "")}-bias{c.Bias}" +
        (c.BF16Out ? (c.AlignedC ? "-bf16out-aligned" : "-bf16out-unaligned") : "") + (c.SplitSlices > 0 ? $"-splitk{c.SplitSlices}" : "") +
        (c.TileK != MatmulTensorCoreKernels.TileK ? $"-tile{c.TileM}x{MatmulTensorCoreKernels.TileN}x{c.TileK}" : ""));

    [TestCaseSource(nameof(Cases))]
    public void GemmMatchesFloat64(string form, bool wide, Case c)
    {
        var rng = TestSeed.NewRandom();
        bool ta = form[0] == 'T', tb = form[1] == 'T';
        int aRows = ta ? c.K : c.M, aCols = ta ? c.M : c.K, bRows = tb ? c.N : c.K, bCols = tb ? c.K : c.N;
        // padded rows: the kernel must skip the gap
        int lda = RoundUp8(aCols + 3), ldb = RoundUp8(bCols + 1), ldc = c.AlignedC ? RoundUp8(c.N + 1) : c.N + 2;
        long strideA = (long)aRows * lda, strideB = (long)bRows * ldb;
        int outBatch = c.SumBatch ? 1 : c.Batch, strideC = c.M * ldc;
        var fa = TestSeed.Uniform(rng, c.Batch * strideA);
        var fb = TestSeed.Uniform(rng, c.Batch * strideB);
        var fbias = TestSeed.Uniform(rng, c.Bias == 2 ? c.M : c.N);
        var abits = new ushort[fa.Length];
        var bbits = new ushort[fb.Length];
        BFloat16.FromFloat(fa, abits);
        BFloat16.FromFloat(fb, bbits);

        double A(float[] x, int bt, int i, int k) => ta ? x[bt * strideA + (long)k * lda + i] : x[bt * strideA + (long)i * lda + k];
        double Bv(float[] x, int bt, int k, int j) => tb ? x[bt * strideB + (long)j * ldb + k] : x[bt * strideB + (long)k * ldb + j];
        float[] ra = Array.ConvertAll(abits, BFloat16.ToFloat), rb = Array.ConvertAll(bbits, BFloat16.ToFloat);
        var exact = new double[outBatch * c.M * c.N];
        var rounded = new double[exact.Length];
        var magnitude = new double[exact.Length];
        var naive = new float[exact.Length];
        for (int ob = 0; ob < outBatch; ob++)
            for (int i = 0; i < c.M; i++)
                for (int j = 0; j < c.N; j++)
                {
                    double bias = c.Bias == 1 ? fbias[j] : c.Bias == 2 ? fbias[i] : 0;
                    double e = bias, r = bias, mag = Math.Abs(bias);
                    float nv = 0f;
                    for (int bt = c.SumBatch ? 0 : ob; bt < (c.SumBatch ? c.Batch : ob + 1); bt++)
                        for (int k = 0; k < c.K; k++)
                        {
                            e += A(fa, bt, i, k) * Bv(fb, bt, k, j);
                            double prod = A(ra, bt, i, k) * Bv(rb, bt, k, j);
                            r += prod; mag += Math.Abs(prod); nv += (float)prod;
                        }
                    int o = (ob * c.M + i) * c.N + j;
                    exact[o] = e; rounded[o] = r; magnitude[o] = mag; naive[o] = Output(c, nv + (float)bias);
                }

        var acc = WarpEmulator.Accelerator;
        using var a = acc.Allocate1D(abits);
        using var b = acc.Allocate1D(bbits);
        using var biasBuf = acc.Allocate1D(fbias);
        int tilesM = (c.M + c.TileM - 1) / c.TileM;
        int tilesN = (c.N + MatmulTensorCoreKernels.TileN - 1) / MatmulTensorCoreKernels.TileN;
        var args = new TensorCoreGemmArgs
        {
            A = WarpEmulator.Address(a), B = WarpEmulator.Address(b), StrideA = strideA, StrideB = strideB,
            M = c.M, N = c.N, K = c.K, Lda = lda, Ldb = ldb, Ldc = ldc, StrideC = strideC, Batch = c.Batch,
            SumBatch = c.SumBatch ? 1 : 0, HasBias = c.Bias, TilesN = tilesN,
            KTiles = (c.K + c.TileK - 1) / c.TileK,
        };
        int slices = args.KTiles * (c.SumBatch ? c.Batch : 1);
        args.SplitSlices = c.SplitSlices > 0 ? c.SplitSlices : slices;
        args.Splits = (slices + args.SplitSlices - 1) / args.SplitSlices;
        var config = new KernelConfig(new Index2D(tilesM * tilesN, outBatch * args.Splits), new Index2D(MatmulTensorCoreKernels.ThreadsFor(c.TileM, wide), 1),
            SharedMemoryConfig.RequestDynamic<byte>(MatmulTensorCoreKernels.SharedBytesFor(c.TileM, c.TileK, c.Stages)));
        var stored = c.BF16Out ? RunBF16Out(acc, (Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs>)Kernel(form, wide, c), config, args, biasBuf, outBatch * strideC, c.AlignedC)
            : RunF32(acc, (Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs>)Kernel(form, wide, c), config, args, biasBuf, InitialC(c, outBatch, ldc, strideC));
        var got = new float[exact.Length];
        for (int ob = 0; ob < outBatch; ob++)
            for (int i = 0; i < c.M; i++)
            {
                Array.Copy(stored, ob * strideC + i * ldc, got, (ob * c.M + i) * c.N, c.N);
                for (int j = c.N; j < ldc; j++)
                    Assert.That(stored[ob * strideC + i * ldc + j], Is.NaN, $"wrote into the row gap at ({ob},{i},{j})");
            }

        double errKernel = 0, errNaive = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            errKernel = Math.Max(errKernel, Math.Abs(got[i] - exact[i]));
            errNaive = Math.Max(errNaive, Math.Abs(naive[i] - exact[i]));
        }
        string what = $"tensor-core GEMM {form} {(wide ? "wide" : "narrow")} {c}";
        TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive bf16/f32 {errNaive:G3}");
        Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-5), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
        int terms = c.K * (c.SumBatch ? c.Batch : 1) + 1 + args.Splits;
        var budget = c.BF16Out ? magnitude.Select((mag, i) => terms * Math.Pow(2, -24) * mag + Math.Pow(2, -8) * Math.Abs(rounded[i])).ToArray() : magnitude;
        Compare.AssertClose(what + " vs rounded inputs", got, rounded, new Tolerance(1e-6, c.BF16Out ? 1 : terms * Math.Pow(2, -24)), budget);
    }

    /// <summary>What the kernel stores for an f32 result: itself, or rounded to bf16 (nearest even).</summary>
    static float Output(Case c, float v) => c.BF16Out ? BFloat16.ToFloat(BFloat16.FromFloat(v)) : v;

    /// <summary>C before the kernel: NaN, except that split-K adds into a C the host zeroed (the row gaps stay NaN).</summary>
    static float[] InitialC(Case c, int outBatch, int ldc, int strideC)
    {
        var init = Enumerable.Repeat(float.NaN, outBatch * strideC).ToArray();
        if (c.SplitSlices > 0)
            for (int ob = 0; ob < outBatch; ob++)
                for (int i = 0; i < c.M; i++) Array.Clear(init, ob * strideC + i * ldc, c.N);
        return init;
    }

    static float[] RunF32(Accelerator acc, Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> kernel, KernelConfig config, TensorCoreGemmArgs args, MemoryBuffer1D<float, Stride1D.Dense> bias, float[] initial)
    {
        using var cBuf = acc.Allocate1D(initial);
        acc.LoadStreamKernel(kernel)(config, cBuf.View, bias.View, args);
        return cBuf.GetAsArray1D();
    }

    static float[] RunBF16Out(Accelerator acc, Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> kernel, KernelConfig config, TensorCoreGemmArgs args, MemoryBuffer1D<float, Stride1D.Dense> bias, int length, bool aligned)
    {
        using var cBuf = acc.Allocate1D(Enumerable.Repeat(BFloat16.FromFloat(float.NaN), length).ToArray());
        args.C = WarpEmulator.Address(cBuf);
        if (aligned) Assert.That(args.C % 16, Is.Zero, "the 16-byte store path needs a 16-byte aligned C");
        args.CAligned = aligned ? 1 : 0;
        acc.LoadStreamKernel(kernel)(config, cBuf.View, bias.View, args);
        return Array.ConvertAll(cBuf.GetAsArray1D(), BFloat16.ToFloat);
    }

    static int RoundUp8(int x) => (x + 7) / 8 * 8;

    /// <summary>The kernel for a case: its warp layout and tile, the f32-C or bf16-C epilogue, its transpose form.</summary>
    static Delegate Kernel(string form, bool wide, Case c) => (wide, c.TileM, c.TileK) switch
    {
        (true, _, _) => ForForm<FourWarps64x64, Tile128x128K64>(form, c.BF16Out),
        (false, 64, 32) => ForForm<EightWarps64x32, Tile64x128K32>(form, c.BF16Out),
        (false, 128, 32) => ForForm<EightWarps64x32, Tile128x128K32>(form, c.BF16Out),
        _ => ForForm<EightWarps64x32, Tile128x128K64>(form, c.BF16Out),
    };

    static Delegate ForForm<TW, TT>(string form, bool bf16Out) where TW : struct, IGemmWarps where TT : struct, IGemmTile => (form, bf16Out) switch
    {
        ("NN", false) => MatmulTensorCoreKernels.Gemm<OrientNN, TW, TT, EmulatedWarpMma>,
        ("NT", false) => MatmulTensorCoreKernels.Gemm<OrientNT, TW, TT, EmulatedWarpMma>,
        ("TN", false) => MatmulTensorCoreKernels.Gemm<OrientTN, TW, TT, EmulatedWarpMma>,
        ("TT", false) => MatmulTensorCoreKernels.Gemm<OrientTT, TW, TT, EmulatedWarpMma>,
        ("NN", true) => MatmulTensorCoreKernels.GemmBF16Out<OrientNN, TW, TT, EmulatedWarpMma>,
        ("NT", true) => MatmulTensorCoreKernels.GemmBF16Out<OrientNT, TW, TT, EmulatedWarpMma>,
        ("TN", true) => MatmulTensorCoreKernels.GemmBF16Out<OrientTN, TW, TT, EmulatedWarpMma>,
        _ => MatmulTensorCoreKernels.GemmBF16Out<OrientTT, TW, TT, EmulatedWarpMma>,
    };
}
