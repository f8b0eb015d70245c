using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Core;

/// <summary>Host bf16 conversion: all 65,536 patterns, every edge case, and rounding against an exact float64 reference.</summary>
public class BFloat16Tests
{
    /// <summary>Reference narrowing: the nearest bf16 by exact distance in double, ties to the even pattern.</summary>
    static ushort ReferenceRound(float f)
    {
        if (float.IsNaN(f)) return 0x7FC0;
        uint bits = (uint)BitConverter.SingleToInt32Bits(f);
        ushort down = (ushort)(bits >> 16);              // truncation: toward zero
        ushort up = (ushort)(down + 1);                   // next pattern away from zero (may become Inf)
        double x = f, dd = Math.Abs(x - BFloat16.ToFloat(down));
        double vu = (up & 0x7FFF) == 0x7F80 ? Math.CopySign(Math.Pow(2, 128), x) : BFloat16.ToFloat(up);  // IEEE: overflow threshold is 2^128
        double du = Math.Abs(x - vu);
        if (dd < du) return down;
        if (du < dd) return up;
        return (down & 1) == 0 ? down : up;
    }

    [Test]
    public void AllPatternsRoundTripExactly()
    {
        for (int p = 0; p < 65536; p++)
        {
            ushort bits = (ushort)p;
            float f = BFloat16.ToFloat(bits);
            ushort back = BFloat16.FromFloat(f);
            if (float.IsNaN(f))
            {
                Assert.That(float.IsNaN(BFloat16.ToFloat(back)), $"NaN pattern 0x{bits:X4} became 0x{back:X4}");
                Assert.That(back & 0x8000, Is.EqualTo(bits & 0x8000), $"NaN 0x{bits:X4} lost its sign");
            }
            else Assert.That(back, Is.EqualTo(bits), $"pattern 0x{bits:X4} ({f:G9}) round-tripped to 0x{back:X4}");
        }
    }

    [Test]
    public void EveryPatternPlusEveryLowHalfRoundsLikeReference()
    {
        // For each of the 65,536 upper halves, test the lower halves that decide rounding: 0, just below, at and just
        // above the tie, and the maximum. This covers ties to even, carries into the exponent, overflow to Inf and subnormals.
        ushort[] lows = [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x4000, 0xC000];
        for (int hi = 0; hi < 65536; hi++)
            foreach (var lo in lows)
            {
                float f = BitConverter.Int32BitsToSingle((hi << 16) | lo);
                ushort got = BFloat16.FromFloat(f), want = ReferenceRound(f);
                if (float.IsNaN(f)) { Assert.That(float.IsNaN(BFloat16.ToFloat(got)), $"NaN input 0x{hi:X4}{lo:X4} gave 0x{got:X4}"); continue; }
                if (got != want) Assert.Fail($"0x{hi:X4}{lo:X4} ({f:G9}): got 0x{got:X4}, reference 0x{want:X4}");
            }
    }

    [Test]
    public void EdgeCases()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BFloat16.FromFloat(0f), Is.EqualTo((ushort)0x0000));
            Assert.That(BFloat16.FromFloat(-0f), Is.EqualTo((ushort)0x8000));
            Assert.That(BFloat16.FromFloat(float.PositiveInfinity), Is.EqualTo((ushort)0x7F80));
            Assert.That(BFloat16.FromFloat(float.NegativeInfinity), Is.EqualTo((ushort)0xFF80));
            Assert.That(BFloat16.FromFloat(float.MaxValue), Is.EqualTo((ushort)0x7F80), "max float rounds up to Inf");
            Assert.That(BFloat16.FromFloat(1.0f), Is.EqualTo((ushort)0x3F80));
            // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (down to 1).
            Assert.That(BFloat16.FromFloat(1f + 1f / 256), Is.EqualTo((ushort)0x3F80));
            // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
            Assert.That(BFloat16.FromFloat(1f + 3f / 256), Is.EqualTo((ushort)0x3F82));
            // Smallest float subnormal: rounds to +0; a subnormal tie 0x00018000 goes to even 0x0002.
            Assert.That(BFloat16.FromFloat(float.Epsilon), Is.EqualTo((ushort)0x0000));
            Assert.That(BFloat16.FromFloat(BitConverter.Int32BitsToSingle(0x00018000)), Is.EqualTo((ushort)0x0002));
            Assert.That(BFloat16.FromFloat(BitConverter.Int32BitsToSingle(0x00008000)), Is.EqualTo((ushort)0x0000));
            // Signalling NaN with only low mantissa bits must stay NaN, not collapse to Inf.
            Assert.That(float.IsNaN(BFloat16.ToFloat(BFloat16.FromFloat(BitConverter.Int32BitsToSingle(0x7F800001)))));
            Assert.That(float.IsNaN(BFloat16.ToFloat(BFloat16.FromFloat(BitConverter.Int32BitsToSingle(unchecked((int)0xFF800001))))));
            Assert.That(BFloat16.FromFloat(float.NaN) & 0x7FC0, Is.EqualTo(0x7FC0));
        });
    }
}

/// <summary>The bf16 conversion kernels agree bit for bit with the host conversion on every backend.</summary>
[BackendFixtures]
public class BFloat16KernelTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void WidenAllPatterns()
    {
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        using var x = B.Empty(DType.BF16, 256, 256);
        x.CopyFrom(bits);
        using var y = Poisoned(256, 256);
        Ops.ToF32(x, y);
        var got = y.ToArray();
        for (int i = 0; i < bits.Length; i++)
        {
            float want = BFloat16.ToFloat(bits[i]);
            if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want))
                Assert.Fail($"ToF32 on {Backends.KindName(Kind)}: 0x{bits[i]:X4} gave {got[i]:G9}, expected {want:G9}");
        }
    }

    [Test]
    public void NarrowMatchesHost()
    {
        // Every bf16 value, every tie and near-tie around it, plus random floats.
        ushort[] lows = [0x0000, 0x7FFF, 0x8000, 0x8001];
        var f = new float[65536 * lows.Length + 4096];
        int k = 0;
        for (int hi = 0; hi < 65536; hi++) foreach (var lo in lows) f[k++] = BitConverter.Int32BitsToSingle((hi << 16) | lo);
        while (k < f.Length) f[k++] = BitConverter.Int32BitsToSingle(Rng.Next() ^ (Rng.Next() << 1));
        using var x = Upload(f, f.Length);
        using var y = B.Empty(DType.BF16, f.Length);
        Ops.ToBF16(x, y);
        var got = y.ToBF16Bits();
        for (int i = 0; i < f.Length; i++)
        {
            ushort want = BFloat16.FromFloat(f[i]);
            if (got[i] != want && !(float.IsNaN(f[i]) && float.IsNaN(BFloat16.ToFloat(got[i]))))
                Assert.Fail($"ToBF16 on {Backends.KindName(Kind)}: 0x{BitConverter.SingleToInt32Bits(f[i]):X8} gave 0x{got[i]:X4}, host 0x{want:X4}\n{TestSeed.Describe()}");
        }
    }

    [Test]
    public void RoundToBF16MatchesHost()
    {
        ushort[] lows = [0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF];
        var f = new float[4096 * lows.Length + 1031];
        int k = 0;
        for (int i = 0; i < 4096; i++) { int hi = i * 16 + Rng.Next(16); foreach (var lo in lows) f[k++] = BitConverter.Int32BitsToSingle((hi << 16) | lo); }
        while (k < f.Length) f[k++] = BitConverter.Int32BitsToSingle(Rng.Next() ^ (Rng.Next() << 1));
        using var x = Upload(f, f.Length);
        using var y = Poisoned(f.Length);
        Ops.RoundToBF16(x, y);
        var got = y.ToArray();
        for (int i = 0; i < f.Length; i++)
        {
            float want = BFloat16.ToFloat(BFloat16.FromFloat(f[i]));
            if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want) && !(float.IsNaN(want) && float.IsNaN(got[i])))
                Assert.Fail($"RoundToBF16 on {Backends.KindName(Kind)}: 0x{BitConverter.SingleToInt32Bits(f[i]):X8} gave {got[i]:G9}, host {want:G9}\n{TestSeed.Describe()}");
        }
    }
}

