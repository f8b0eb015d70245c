namespace Mdm.Train.Data;

/// <summary>
/// SplitMix64: a tiny generator with a fixed, documented algorithm, so that shuffles, flips and procedural samples
/// stay identical across .NET versions (System.Random's seeded sequence is an implementation detail).
/// </summary>
public struct SplitMix
{
    ulong state;

    public SplitMix(ulong seed) => state = seed;

    /// <summary>A generator for the stream (seed, a, b, c): independent streams without storing any state.</summary>
    public static SplitMix For(long seed, long a, long b = 0, long c = 0) =>
        new(Mix(Mix(Mix((ulong)seed ^ 0x6A09E667F3BCC909UL) ^ (ulong)a) ^ (ulong)b) ^ (ulong)c);

    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        state += 0x9E3779B97F4A7C15UL;
        ulong z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n) (Lemire's multiply-shift; the tiny bias is irrelevant for n ≪ 2^32).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        return (int)(((NextUInt64() >> 32) * (ulong)n) >> 32);
    }
}
