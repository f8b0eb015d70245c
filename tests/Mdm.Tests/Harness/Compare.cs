using System.Text;

namespace Mdm.Tests.Harness;

/// <summary>Allowed error per element: atol + rtol·scale, where scale is |reference| unless the caller supplies one.</summary>
public readonly record struct Tolerance(double Atol, double Rtol)
{
    public static readonly Tolerance F32Exact = new(0, 0);
    public static readonly Tolerance F32Elementwise = new(1e-6, 1e-5);
    public static readonly Tolerance F32Transcendental = new(2e-6, 2e-5);
}

/// <summary>
/// Compares a device result with a float64 reference in the llm.c manner: every element gets an error budget
/// (atol + rtol·scale); the report lists the first mismatches with their indices, the max absolute and relative
/// error, and how much of the budget the worst element used. Unwritten (NaN-poisoned) outputs fail.
/// </summary>
public static class Compare
{
    public static void AssertClose(string what, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, Tolerance tol,
        ReadOnlySpan<double> scale = default, int[]? shape = null)
    {
        if (actual.Length != expected.Length)
            Assert.Fail($"{what}: length {actual.Length} != reference length {expected.Length}\n{TestSeed.Describe()}");
        var report = new StringBuilder();
        int mismatches = 0, shown = 0;
        double maxAbs = 0, maxRel = 0, maxBudget = 0;
        int worst = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            double s = scale.IsEmpty ? Math.Abs(e) : scale[i];
            double budget = tol.Atol + tol.Rtol * s;
            bool bad;
            double abs;
            if (double.IsNaN(e)) { bad = !double.IsNaN(a); abs = bad ? double.PositiveInfinity : 0; }
            else if (double.IsInfinity(e)) { bad = a != e; abs = bad ? double.PositiveInfinity : 0; }
            else
            {
                abs = Math.Abs(a - e);
                bad = !(abs <= budget);   // NaN in actual (poison left unwritten) fails here
                if (double.IsNaN(abs)) abs = double.PositiveInfinity;
            }
            double rel = abs / Math.Max(Math.Abs(e), 1e-30);
            double used = budget > 0 ? abs / budget : (abs == 0 ? 0 : double.PositiveInfinity);
            if (abs > maxAbs || worst < 0) { maxAbs = Math.Max(maxAbs, abs); }
            if (!double.IsInfinity(rel)) maxRel = Math.Max(maxRel, rel);
            if (used > maxBudget || worst < 0) { maxBudget = Math.Max(maxBudget, used); worst = i; }
            if (bad)
            {
                mismatches++;
                if (shown < 5)
                {
                    report.AppendLine($"  [{Index(i, shape)}] got {a:G9}, expected {e:G12}, |diff| {abs:G3}, allowed {budget:G3}");
                    shown++;
                }
                if (mismatches >= 10) { report.AppendLine("  ... stopping after 10 mismatches"); break; }
            }
        }
        if (mismatches > 0)
        {
            Assert.Fail($"{what}: {(mismatches >= 10 ? "10+" : mismatches.ToString())} of {actual.Length} elements outside atol {tol.Atol:G3} + rtol {tol.Rtol:G3}·|ref|\n" +
                        report +
                        $"  max abs error {maxAbs:G3}, max rel error {maxRel:G3}, worst element used {100 * maxBudget:F0}% of its error budget\n" +
                        TestSeed.Describe());
        }
        TestContext.Out.WriteLine($"{what}: {actual.Length} elements OK, max abs {maxAbs:G3}, max rel {maxRel:G3}, {100 * maxBudget:F1}% of budget");
    }

    public static void AssertClose(string what, Mdm.Kernels.Tensor actual, double[] expected, Tolerance tol, double[]? scale = null) =>
        AssertClose(what, actual.ToArray(), expected, tol, scale ?? default(ReadOnlySpan<double>), actual.Shape);

    static string Index(int flat, int[]? shape)
    {
        if (shape is null || shape.Length <= 1) return flat.ToString();
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = flat % Math.Max(shape[d], 1); flat /= Math.Max(shape[d], 1); }
        return string.Join(",", idx);
    }
}
