namespace Mdm.Tests.Harness;

/// <summary>
/// Fresh random inputs every run. The seed is chosen per test (or fixed with MDM_TEST_SEED) and printed with every
/// failure, so a failing run can be replayed exactly.
/// </summary>
public static class TestSeed
{
    public const string EnvironmentVariable = "MDM_TEST_SEED";
    static readonly AsyncLocal<int> current = new();

    public static Random NewRandom()
    {
        var fixedSeed = Environment.GetEnvironmentVariable(EnvironmentVariable);
        int seed = int.TryParse(fixedSeed, out int s) ? s : Random.Shared.Next();
        current.Value = seed;
        return new Random(seed);
    }

    public static int Current => current.Value;

    public static string Describe() => $"  seed {current.Value} (replay with {EnvironmentVariable}={current.Value})";

    public static float[] Uniform(Random rng, long n, float lo = -1f, float hi = 1f)
    {
        var r = new float[n];
        for (long i = 0; i < n; i++) r[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return r;
    }

    public static double[] ToDouble(float[] x) => Array.ConvertAll(x, v => (double)v);
}
