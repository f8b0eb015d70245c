using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The warpgroup layer: descriptor bits and the addresses they decode to, worked out by hand; the emulated wgmma's
/// accumulators against the PTX ISA's D-fragment table for m64nNk16 (written out here, independently of the
/// emulation); and the emulated mma against a float64 product, for every swizzle mode.
/// </summary>
public class WgmmaLayoutTests
{
    /// <summary>wgmma D (64×N, f32), ISA "Register fragment layout for accumulator matrix D": thread t of the
    /// warpgroup, element i: row 16·(t/32) + (t%32)/4 + 8·((i/2)%2), column 8·(i/4) + 2·(t%4) + i%2.</summary>
    static (int Row, int Col) DElement(int thread, int i) =>
        (16 * (thread / 32) + (thread % 32) / 4 + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (thread % 4) + i % 2);

    [Test]
    public void DescriptorPacksTheIsaBitFields()
    {
        var d = MatrixDescriptor.Create(1040, 128, 1024, WgmmaSwizzle.Bytes128);
        // start 1040/16 = 65 in bits 0–13, LBO 128/16 = 8 in 16–29, SBO 1024/16 = 64 in 32–45, mode 1 in 62–63.
        Assert.That(((ulong)d.Hi << 32) | d.Lo, Is.EqualTo(0x4000_0040_0008_0041UL));
        Assert.That((d.StartOffset, d.LeadingByteOffset, d.StrideByteOffset, d.Swizzle), Is.EqualTo((1040, 128, 1024, WgmmaSwizzle.Bytes128)));
        Assert.That(d.Advance(32).StartOffset, Is.EqualTo(1072));
        var none = MatrixDescriptor.Create(0, 2048, 256, WgmmaSwizzle.None);
        Assert.That(((ulong)none.Hi << 32) | none.Lo, Is.EqualTo(0x0000_0010_0080_0000UL));
    }

    [Test]
    public void DescriptorDecodesToHandComputedAddresses()
    {
        // Unswizzled: start + (r/8)·SBO + (r%8)·16 + (k/8)·LBO + (k%8)·2 = 256 + 1024 + 80 + 128 + 2.
        Assert.That(MatrixDescriptor.Create(256, 128, 1024, WgmmaSwizzle.None).ElementOffset(13, 9), Is.EqualTo(1490));
        // 128-byte rows: (3, 5) with start 32 is byte 426 = row 3, chunk 2, byte 10; chunk 2 ^ 3 = 1 → 384 + 16 + 10.
        Assert.That(MatrixDescriptor.Create(32, 16, 1024, WgmmaSwizzle.Bytes128).ElementOffset(3, 5), Is.EqualTo(410));
        Assert.That(MatrixDescriptor.Create(32, 16, 1024, WgmmaSwizzle.Bytes128).ElementOffset(0, 15), Is.EqualTo(62));
        // 64-byte rows: (10, 12) is byte 512 + 128 + 24 = 664, address bits 7–8 = 1 flip chunk bit 4: 648.
        Assert.That(MatrixDescriptor.Create(0, 16, 512, WgmmaSwizzle.Bytes64).ElementOffset(10, 12), Is.EqualTo(648));
        // 32-byte rows: (4, 3) is byte 134, address bit 7 = 1 flips bit 4: 150.
        Assert.That(MatrixDescriptor.Create(0, 16, 256, WgmmaSwizzle.Bytes32).ElementOffset(4, 3), Is.EqualTo(150));
    }

    // ---- the emulated mma ------------------------------------------------------------------------------------------

    const int K = 32, BOffset = 8192, SharedBytes = 16384;

    /// <summary>A 64×32 K-major operand at <paramref name="start"/> in <paramref name="swizzle"/>'s layout: its first
    /// k16 step's descriptor and how far the second step starts from it.</summary>
    static (MatrixDescriptor First, int StepBytes) Layout(WgmmaSwizzle swizzle, int start) => swizzle switch
    {
        WgmmaSwizzle.None => (MatrixDescriptor.Create(start, 128, 512, swizzle), 256),        // 4 core matrices along K per 8 rows
        WgmmaSwizzle.Bytes32 => (MatrixDescriptor.Create(start, 16, 256, swizzle), 2048),     // one k16 per 32-byte row: a second block of rows
        WgmmaSwizzle.Bytes64 => (MatrixDescriptor.Create(start, 16, 512, swizzle), 32),
        _ => (MatrixDescriptor.Create(start, 16, 1024, swizzle), 32),
    };

    static int Offset((MatrixDescriptor First, int StepBytes) layout, int row, int k) =>
        layout.First.Advance(layout.StepBytes * (k / 16)).ElementOffset(row, k % 16);

    static void MmaKernel<TG>(ArrayView<byte> image, ArrayView<float> init, ArrayView<float> result,
        MatrixDescriptor a, MatrixDescriptor b, int stepBytes) where TG : struct, IWarpgroupMma<TG>
    {
        var shared = SharedMemory.GetDynamic<byte>();
        int t = Group.IdxX;
        for (int i = t; i < image.IntLength; i += 128) shared[i] = image[i];
        var wg = default(TG).Bind(shared);
        wg.FenceSharedStores();
        Group.Barrier();
        int o = t * 32;
        var acc = new Acc64x64(Read(init, o), Read(init, o + 4), Read(init, o + 8), Read(init, o + 12),
                               Read(init, o + 16), Read(init, o + 20), Read(init, o + 24), Read(init, o + 28));
        wg.Fence();
        acc = wg.Mma(acc, a, b);
        acc = wg.Mma(acc, a.Advance(stepBytes), b.Advance(stepBytes));
        wg.Commit();
        wg.WaitAll();
        Write(result, o, acc.N0); Write(result, o + 4, acc.N1); Write(result, o + 8, acc.N2); Write(result, o + 12, acc.N3);
        Write(result, o + 16, acc.N4); Write(result, o + 20, acc.N5); Write(result, o + 24, acc.N6); Write(result, o + 28, acc.N7);
        if (shared.Length < 0) result[0] = 0f;
    }

    static Frag Read(ArrayView<float> x, int o) => new(x[o], x[o + 1], x[o + 2], x[o + 3]);

    static void Write(ArrayView<float> x, int o, Frag f) { x[o] = f.X; x[o + 1] = f.Y; x[o + 2] = f.Z; x[o + 3] = f.W; }

    /// <summary>A (64×32) and B (stored as 64 columns × 32 k) into one shared image; returns each thread's 32 results.</summary>
    static float[] RunEmulated(WgmmaSwizzle swizzle, ushort[] a, ushort[] b, float[] init)
    {
        var la = Layout(swizzle, 0);
        var lb = Layout(swizzle, BOffset);
        var image = new byte[SharedBytes];
        for (int r = 0; r < 64; r++)
            for (int k = 0; k < K; k++)
            {
                BitConverter.TryWriteBytes(image.AsSpan(Offset(la, r, k)), a[r * K + k]);
                BitConverter.TryWriteBytes(image.AsSpan(Offset(lb, r, k)), b[r * K + k]);
            }
        var acc = WarpEmulator.Accelerator;
        using var imageBuf = acc.Allocate1D(image);
        using var initBuf = acc.Allocate1D(init);
        using var result = acc.Allocate1D(Enumerable.Repeat(float.NaN, 128 * 32).ToArray());
        var kernel = acc.LoadStreamKernel<ArrayView<byte>, ArrayView<float>, ArrayView<float>, MatrixDescriptor, MatrixDescriptor, int>(MmaKernel<EmulatedWarpgroupMma>);
        kernel(new KernelConfig(1, 128, SharedMemoryConfig.RequestDynamic<byte>(SharedBytes)), imageBuf.View, initBuf.View, result.View, la.First, lb.First, la.StepBytes);
        return result.GetAsArray1D();
    }

    static readonly WgmmaSwizzle[] Swizzles = [WgmmaSwizzle.None, WgmmaSwizzle.Bytes128, WgmmaSwizzle.Bytes64, WgmmaSwizzle.Bytes32];

    [TestCaseSource(nameof(Swizzles))]
    public void EmulatedWgmmaGivesEachThreadTheIsaAccumulator(WgmmaSwizzle swizzle)
    {
        // D(r, c) = (r + 1)·1 + 64·(c + 1): A's k 0 and 1 hold r + 1 and 64, B's hold 1 and c + 1 (exact in bf16 and f32),
        // so every element names its own row and column.
        var a = new ushort[64 * K];
        var b = new ushort[64 * K];
        for (int r = 0; r < 64; r++)
        {
            a[r * K] = BFloat16.FromFloat(r + 1); a[r * K + 1] = BFloat16.FromFloat(64);
            b[r * K] = BFloat16.FromFloat(1); b[r * K + 1] = BFloat16.FromFloat(r + 1);
        }
        var got = RunEmulated(swizzle, a, b, new float[128 * 32]);
        for (int t = 0; t < 128; t++)
            for (int i = 0; i < 32; i++)
            {
                var (row, col) = DElement(t, i);
                Assert.That(got[t * 32 + i], Is.EqualTo((row + 1) + 64f * (col + 1)), $"{swizzle}: thread {t}, element {i}");
            }
    }

    [TestCaseSource(nameof(Swizzles))]
    public void EmulatedWgmmaMatchesFloat64Product(WgmmaSwizzle swizzle)
    {
        var rng = TestSeed.NewRandom();
        var a = new ushort[64 * K];
        var b = new ushort[64 * K];
        BFloat16.FromFloat(TestSeed.Uniform(rng, a.Length), a);
        BFloat16.FromFloat(TestSeed.Uniform(rng, b.Length), b);
        var c = TestSeed.Uniform(rng, 64 * 64);
        var init = new float[128 * 32];
        for (int t = 0; t < 128; t++)
            for (int i = 0; i < 32; i++) { var (row, col) = DElement(t, i); init[t * 32 + i] = c[row * 64 + col]; }
        var regs = RunEmulated(swizzle, a, b, init);

        var actual = new float[64 * 64];
        var expected = new double[64 * 64];
        var scale = new double[64 * 64];
        for (int t = 0; t < 128; t++)
            for (int i = 0; i < 32; i++) { var (row, col) = DElement(t, i); actual[row * 64 + col] = regs[t * 32 + i]; }
        for (int row = 0; row < 64; row++)
            for (int col = 0; col < 64; col++)
            {
                double sum = c[row * 64 + col], magnitude = Math.Abs(sum);
                for (int k = 0; k < K; k++)
                {
                    double p = (double)BFloat16.ToFloat(a[row * K + k]) * BFloat16.ToFloat(b[col * K + k]);
                    sum += p; magnitude += Math.Abs(p);
                }
                expected[row * 64 + col] = sum;
                scale[row * 64 + col] = magnitude;
            }
        Compare.AssertClose($"emulated wgmma m64n64k16 ×2 ({swizzle}) vs float64", actual, expected, new Tolerance(0, (K + 1) * Math.Pow(2, -24)), scale);
    }

    /// <summary>The PTX implementation names wgmma and its fences, with every depot promoted and the sm_90a patch applied.</summary>
    [Test]
    public void PtxImplementationEmitsWgmmaForSm90a()
    {
        string ptx = Sm90aPtx.Patch(PtxCompiler.Compile(
            (Action<ArrayView<byte>, ArrayView<float>, ArrayView<float>, MatrixDescriptor, MatrixDescriptor, int>)MmaKernel<PtxWarpgroupMma>,
            KernelSpecialization.Empty, promoteDepots: true));
        Assert.That(ptx, Does.Contain(".target sm_90a"));
        Assert.That(ptx, Does.Contain(".extern .shared .align 1024 .b8 __dyn_shared_alloca[]"));
        foreach (var op in new[] { "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16", "wgmma.fence.sync.aligned",
                                   "wgmma.commit_group.sync.aligned", "wgmma.wait_group.sync.aligned 0", "fence.proxy.async.shared::cta" })
            Assert.That(ptx, Does.Contain(op), op);
        Assert.That(ptx, Does.Not.Contain("ld.local"), "depots promoted");

        // The fused K-64 step: four wgmma between one fence and one wait, in a single asm block.
        string fused = PtxCompiler.Compile((Action<ArrayView<float>, MatrixDescriptor, MatrixDescriptor>)FusedKernel<PtxWarpgroupMma>,
            KernelSpecialization.Empty, promoteDepots: true);
        Assert.That(fused.Split("wgmma.mma_async.sync.aligned.m64n64k16").Length - 1, Is.EqualTo(4));
        Assert.That(fused.IndexOf("wgmma.fence", StringComparison.Ordinal), Is.LessThan(fused.IndexOf("wgmma.mma_async", StringComparison.Ordinal)));
        Assert.That(fused.IndexOf("wgmma.wait_group", StringComparison.Ordinal), Is.GreaterThan(fused.LastIndexOf("wgmma.mma_async", StringComparison.Ordinal)));
    }

    static void FusedKernel<TG>(ArrayView<float> result, MatrixDescriptor a, MatrixDescriptor b) where TG : struct, IWarpgroupMma<TG>
    {
        var shared = SharedMemory.GetDynamic<byte>();
        var acc = default(TG).Bind(shared).MmaK64(default, a, b, 32);
        Write(result, Group.IdxX * 32, acc.N0);
        if (shared.Length < 0) result[0] = 0f;
    }
}
