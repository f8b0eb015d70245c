using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The emulated warp primitives against the PTX ISA's fragment tables (ISA 8.x, "Matrix Fragments for mma.m16n8k16
/// with floating point type" and "ldmatrix"), written out here per lane and element, independently of the emulation's
/// shuffle formulas; and the emulated mma against a float64 scalar product.
/// </summary>
public class WarpLayoutTests
{
    // ---- the ISA's tables: groupID = lane / 4, threadID_in_group = lane % 4 ------------------------------------------

    /// <summary>mma A (16×16, row): element i = 0..7 of a lane (register i/2, half i%2).</summary>
    static (int Row, int Col) AElement(int lane, int i) =>
        ((i < 2 || (i >= 4 && i < 6)) ? lane / 4 : lane / 4 + 8, (lane % 4) * 2 + (i & 1) + (i >= 4 ? 8 : 0));

    /// <summary>mma B (16×8, col): element i = 0..3 (register i/2, half i%2).</summary>
    static (int Row, int Col) BElement(int lane, int i) => ((lane % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0), lane / 4);

    /// <summary>mma C and D (16×8, f32): element i = 0..3.</summary>
    static (int Row, int Col) CElement(int lane, int i) => (i < 2 ? lane / 4 : lane / 4 + 8, (lane % 4) * 2 + (i & 1));

    /// <summary>ldmatrix m8n8 b16: half h of the register a lane receives for one matrix; row addresses come from
    /// lanes 8·matrix + row. With .trans the lane receives the transposed matrix's element.</summary>
    static (int Row, int Col) LdmatrixElement(int lane, int h, bool trans) =>
        trans ? ((lane % 4) * 2 + h, lane / 4) : (lane / 4, (lane % 4) * 2 + h);

    // ---- ldmatrix --------------------------------------------------------------------------------------------------

    const int LdmatrixModes = 6;   // x1, x2, x4, then the same with .trans
    static (int Count, bool Trans) Mode(int mode) => (1 << (mode % 3), mode >= 3);

    /// <summary>Row r of matrix j sits in 16-byte slot (5·(8j + r) + 3) mod 32, so lane order and slot order differ.</summary>
    static int Slot(int lane) => (5 * lane + 3) % 32;

    static void LdmatrixKernel<TM>(ArrayView<ushort> rows, ArrayView<uint> result) where TM : struct, IWarpMma<TM>
    {
        var shared = SharedMemory.GetDynamic<byte>();
        int lane = Group.IdxX;
        for (int c = 0; c < 8; c++) shared.Cast<ushort>()[Slot(lane) * 8 + c] = rows[lane * 8 + c];
        Group.Barrier();
        var m = default(TM).Bind(shared);
        int offset = Slot(lane) * 16;
        for (int mode = 0; mode < LdmatrixModes; mode++)
        {
            U4 r = mode switch
            {
                0 => new U4(m.LoadMatrixX1(offset), 0, 0, 0),
                1 => ToU4(m.LoadMatrixX2(offset)),
                2 => m.LoadMatrixX4(offset),
                3 => new U4(m.LoadMatrixX1Trans(offset), 0, 0, 0),
                4 => ToU4(m.LoadMatrixX2Trans(offset)),
                _ => m.LoadMatrixX4Trans(offset),
            };
            int o = (mode * 32 + lane) * 4;
            result[o] = r.X; result[o + 1] = r.Y; result[o + 2] = r.Z; result[o + 3] = r.W;
        }
    }

    static U4 ToU4(U2 r) => new(r.X, r.Y, 0, 0);

    [Test]
    public void EmulatedLdmatrixGivesEachLaneTheIsaFragment()
    {
        var acc = WarpEmulator.Accelerator;
        // Element (r, c) of matrix j is the distinct code 64j + 8r + c: a wrong lane, register or half shows as a wrong code.
        var codes = new ushort[32 * 8];
        for (int i = 0; i < codes.Length; i++) codes[i] = (ushort)i;
        using var rows = acc.Allocate1D(codes);
        using var result = acc.Allocate1D<uint>(LdmatrixModes * 32 * 4);
        var kernel = acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<uint>>(LdmatrixKernel<EmulatedWarpMma>);
        kernel(new KernelConfig(1, 32, SharedMemoryConfig.RequestDynamic<byte>(512)), rows.View, result.View);
        var got = result.GetAsArray1D();
        for (int mode = 0; mode < LdmatrixModes; mode++)
        {
            var (count, trans) = Mode(mode);
            for (int lane = 0; lane < 32; lane++)
                for (int j = 0; j < count; j++)
                    for (int h = 0; h < 2; h++)
                    {
                        var (r, c) = LdmatrixElement(lane, h, trans);
                        uint code = (got[(mode * 32 + lane) * 4 + j] >> (16 * h)) & 0xFFFF;
                        Assert.That(code, Is.EqualTo(64 * j + 8 * r + c),
                            $"ldmatrix.x{count}{(trans ? ".trans" : "")}: lane {lane}, register {j}, half {h}");
                    }
        }
    }

    // ---- mma -------------------------------------------------------------------------------------------------------

    static void MmaKernel<TM>(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, ArrayView<float> d) where TM : struct, IWarpMma<TM>
    {
        int lane = Group.IdxX;
        var f = default(TM).Bind(SharedMemory.GetDynamic<byte>()).Mma(new Frag(c[4 * lane], c[4 * lane + 1], c[4 * lane + 2], c[4 * lane + 3]),
            new U4(a[4 * lane], a[4 * lane + 1], a[4 * lane + 2], a[4 * lane + 3]), b[2 * lane], b[2 * lane + 1]);
        d[4 * lane] = f.X; d[4 * lane + 1] = f.Y; d[4 * lane + 2] = f.Z; d[4 * lane + 3] = f.W;
    }

    [Test]
    public void EmulatedMmaMatchesScalarProductThroughIsaFragments()
    {
        var rng = TestSeed.NewRandom();
        var acc = WarpEmulator.Accelerator;
        var aBits = new ushort[16 * 16];
        var bBits = new ushort[16 * 8];
        BFloat16.FromFloat(TestSeed.Uniform(rng, aBits.Length), aBits);
        BFloat16.FromFloat(TestSeed.Uniform(rng, bBits.Length), bBits);
        var cMat = TestSeed.Uniform(rng, 16 * 8);

        // Scatter A, B and C into per-lane registers by the ISA tables.
        var aRegs = new uint[32 * 4];
        var bRegs = new uint[32 * 2];
        var cRegs = new float[32 * 4];
        for (int lane = 0; lane < 32; lane++)
        {
            for (int i = 0; i < 8; i++) { var (r, k) = AElement(lane, i); aRegs[lane * 4 + i / 2] |= (uint)aBits[r * 16 + k] << (16 * (i & 1)); }
            for (int i = 0; i < 4; i++) { var (k, n) = BElement(lane, i); bRegs[lane * 2 + i / 2] |= (uint)bBits[k * 8 + n] << (16 * (i & 1)); }
            for (int i = 0; i < 4; i++) { var (r, n) = CElement(lane, i); cRegs[lane * 4 + i] = cMat[r * 8 + n]; }
        }
        using var a = acc.Allocate1D(aRegs);
        using var b = acc.Allocate1D(bRegs);
        using var c = acc.Allocate1D(cRegs);
        using var d = acc.Allocate1D<float>(32 * 4);
        d.View.MemSetToZero();
        var kernel = acc.LoadStreamKernel<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>>(MmaKernel<EmulatedWarpMma>);
        kernel(new KernelConfig(1, 32), a.View, b.View, c.View, d.View);
        var dRegs = d.GetAsArray1D();

        // Gather D by the same table and compare with the float64 product (bf16 products are exact in f32; only the
        // f32 sums round: 17 terms, each within 2^-24 relative of the running sum).
        var actual = new float[16 * 8];
        var expected = new double[16 * 8];
        var scale = new double[16 * 8];
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++) { var (r, n) = CElement(lane, i); actual[r * 8 + n] = dRegs[lane * 4 + i]; }
        for (int r = 0; r < 16; r++)
            for (int n = 0; n < 8; n++)
            {
                double sum = cMat[r * 8 + n], magnitude = Math.Abs(cMat[r * 8 + n]);
                for (int k = 0; k < 16; k++)
                {
                    double p = (double)BFloat16.ToFloat(aBits[r * 16 + k]) * BFloat16.ToFloat(bBits[k * 8 + n]);
                    sum += p; magnitude += Math.Abs(p);
                }
                expected[r * 8 + n] = sum;
                scale[r * 8 + n] = magnitude;
            }
        Compare.AssertClose("emulated mma.m16n8k16 vs float64", actual, expected, new Tolerance(0, 17 * Math.Pow(2, -24)), scale);
    }

    /// <summary>The PTX implementation names the same instruction shapes the emulation stands in for.</summary>
    [Test]
    public void PtxImplementationEmitsEachPrimitive()
    {
        string ld = PtxCompiler.Compile((Action<ArrayView<ushort>, ArrayView<uint>>)LdmatrixKernel<PtxWarpMma>, KernelSpecialization.Empty, promoteDepots: true);
        foreach (var shape in new[] { "x1", "x2", "x4", "x1.trans", "x2.trans", "x4.trans" })
            Assert.That(ld, Does.Contain($"ldmatrix.sync.aligned.m8n8.{shape}.shared.b16"), shape);
        string mma = PtxCompiler.Compile((Action<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>>)MmaKernel<PtxWarpMma>, KernelSpecialization.Empty, promoteDepots: true);
        Assert.That(mma, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        Assert.That(mma, Does.Not.Contain("ld.local"), "depots promoted");
    }
}
