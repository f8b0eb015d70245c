using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Core;

public class PhiloxTests
{
    // Known-answer vectors of Random123's kat_vectors for philox4x32_10.
    [TestCase(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [TestCase(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [TestCase(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void KnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint e0, uint e1, uint e2, uint e3)
    {
        Philox.Block(ref c0, ref c1, ref c2, ref c3, k0, k1);
        Assert.That(new[] { c0, c1, c2, c3 }, Is.EqualTo(new[] { e0, e1, e2, e3 }));
    }
}

/// <summary>The same seed gives the same uniform and normal streams on every backend (CPU backend = the reference).</summary>
[BackendFixtures]
public class RandomStreamTests(BackendKind kind) : KernelFixture(kind)
{
    const int N = 4099;   // not a multiple of 4: the last Philox block is partial

    static float[] CpuStream(bool normal, ulong seed, ulong sub)
    {
        var cpu = TestBackends.Get(BackendKind.Cpu);
        using var t = cpu.Empty(N);
        if (normal) Ops.RandomNormal(t, seed, sub); else Ops.RandomUniform(t, seed, sub);
        return t.ToArray();
    }

    [Test]
    public void UniformStreamIsIdenticalToCpu()
    {
        ulong seed = (ulong)Rng.NextInt64(), sub = (ulong)Rng.Next(1000);
        using var y = Poisoned(N);
        Ops.RandomUniform(y, seed, sub);
        var got = y.ToArray();
        var want = CpuStream(false, seed, sub);
        for (int i = 0; i < N; i++)
            if (got[i] != want[i]) Assert.Fail($"uniform[{i}] on {Backends.KindName(Kind)}: {got[i]:G9} vs cpu {want[i]:G9} (seed {seed}, sub {sub})");
        Assert.That(got.Min(), Is.GreaterThanOrEqualTo(0f));
        Assert.That(got.Max(), Is.LessThan(1f));
        Assert.That(got.Average(), Is.EqualTo(0.5).Within(0.03));
    }

    [Test]
    public void NormalStreamMatchesCpu()
    {
        ulong seed = (ulong)Rng.NextInt64(), sub = (ulong)Rng.Next(1000);
        using var y = Poisoned(N);
        Ops.RandomNormal(y, seed, sub);
        var got = y.ToArray();
        var want = CpuStream(true, seed, sub);
        // Identical draws; only the GPU's approximate log/sin/cos may move the last bits of the Box–Muller transform.
        double tol = Kind == BackendKind.Cuda ? 2e-5 : 0;
        for (int i = 0; i < N; i++)
            if (!(Math.Abs(got[i] - want[i]) <= tol * (1 + Math.Abs(want[i]))))
                Assert.Fail($"normal[{i}] on {Backends.KindName(Kind)}: {got[i]:G9} vs cpu {want[i]:G9} (seed {seed}, sub {sub})");
        double mean = got.Average(), var = got.Select(v => (v - mean) * (v - mean)).Average();
        Assert.That(mean, Is.EqualTo(0).Within(0.06));
        Assert.That(var, Is.EqualTo(1).Within(0.08));
    }

    /// <summary>A fill starting at block k is the tail of a fill from block 0 (how a rank draws its slice of a global batch).</summary>
    [Test]
    public void NormalFromAFirstBlockIsTheTailOfTheWholeStream()
    {
        ulong seed = (ulong)Rng.NextInt64(), sub = (ulong)Rng.Next(1000);
        int firstBlock = 1 + Rng.Next(500), tail = N - 4 * firstBlock;
        using var y = Poisoned(tail);
        Ops.RandomNormal(y, seed, sub, firstBlock: (ulong)firstBlock);
        var got = y.ToArray();
        var whole = CpuStream(true, seed, sub);
        double tol = Kind == BackendKind.Cuda ? 2e-5 : 0;
        for (int i = 0; i < tail; i++)
            if (!(Math.Abs(got[i] - whole[4 * firstBlock + i]) <= tol * (1 + Math.Abs(whole[4 * firstBlock + i]))))
                Assert.Fail($"normal[{i}] from block {firstBlock} on {Backends.KindName(Kind)}: {got[i]:G9} vs element {4 * firstBlock + i} of the whole stream {whole[4 * firstBlock + i]:G9} (seed {seed}, sub {sub})");
    }

    [Test]
    public void StreamsDifferBySeedAndSubsequence()
    {
        using var a = Ops.RandomUniform(B.Empty(64), 1, 0);
        using var b = Ops.RandomUniform(B.Empty(64), 2, 0);
        using var c = Ops.RandomUniform(B.Empty(64), 1, 1);
        Assert.That(a.ToArray(), Is.Not.EqualTo(b.ToArray()));
        Assert.That(a.ToArray(), Is.Not.EqualTo(c.ToArray()));
    }
}

