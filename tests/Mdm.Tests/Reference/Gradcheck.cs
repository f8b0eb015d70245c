namespace Mdm.Tests.Reference;

/// <summary>
/// Float64 central finite differences: checks that a reference backward equals the derivative of its forward,
/// (L = Σ dy·f(x)), so the references the kernels are tested against are themselves right.
/// </summary>
public static class Gradcheck
{
    public const double Eps = 1e-6, Atol = 1e-5, Rtol = 1e-3;

    public static void Check(string what, Func<double[], double[]> forward, double[] x, double[] dy, double[] analytic)
    {
        Assert.That(analytic, Has.Length.EqualTo(x.Length), $"{what}: gradient length");
        for (int i = 0; i < x.Length; i++)
        {
            var xp = (double[])x.Clone(); xp[i] += Eps;
            var xm = (double[])x.Clone(); xm[i] -= Eps;
            double lp = Dot(dy, forward(xp)), lm = Dot(dy, forward(xm));
            double numeric = (lp - lm) / (2 * Eps);
            if (!(Math.Abs(numeric - analytic[i]) <= Atol + Rtol * Math.Abs(numeric)))
                Assert.Fail($"{what}: d/dx[{i}] analytic {analytic[i]:G10} vs numeric {numeric:G10}\n{Harness.TestSeed.Describe()}");
        }
    }

    static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }
}
