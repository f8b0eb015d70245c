using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>Settings of a gradient check.</summary>
public sealed record GradcheckOptions
{
    /// <summary>Finite-difference step. F32 values need a larger step than the float64 default of 1e-6.</summary>
    public double Eps { get; init; } = 1e-3;
    public double Atol { get; init; } = 1e-3;
    public double Rtol { get; init; } = 1e-2;
    /// <summary>0 = perturb every element; k &gt; 0 = k random directions per input (for large tensors).</summary>
    public int RandomDirections { get; init; }
    public ulong Seed { get; init; } = 12345;
}

/// <summary>The outcome of <see cref="Gradcheck.Check"/>: one line per input, and whether all passed.</summary>
public sealed record GradcheckResult(bool Passed, IReadOnlyList<string> Report)
{
    public override string ToString() => string.Join(Environment.NewLine, Report);
}

/// <summary>
/// Compares autograd gradients with central finite differences of L = Σ w∘f(x) for a fixed random weight w
/// (so any output shape works). Every element is perturbed, or — for large tensors — the directional derivative
/// along random unit directions is compared with ⟨∇L, u⟩.
/// </summary>
public static class Gradcheck
{
    public static GradcheckResult Check(Func<Variable[], Variable> f, Variable[] inputs, GradcheckOptions? options = null)
    {
        var o = options ?? new GradcheckOptions();
        var report = new List<string>();
        bool passed = true;

        var (w, analytic) = AnalyticGradients(f, inputs, o.Seed);

        double Loss()
        {
            using var scope = Graph.NoGrad();
            using var g = new Graph();
            var y = f(inputs).Data.ToArray();
            double s = 0;
            for (int k = 0; k < y.Length; k++) s += (double)w[k] * y[k];
            return s;
        }

        var rng = new Random((int)(o.Seed % int.MaxValue));
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!inputs[i].RequiresGrad) continue;
            var x = inputs[i].Data;
            var x0 = x.ToArray();
            double worst = 0;
            string worstText = "";
            int probes = o.RandomDirections > 0 ? o.RandomDirections : x0.Length;
            for (int p = 0; p < probes; p++)
            {
                var dir = new double[x0.Length];
                if (o.RandomDirections > 0)
                {
                    double norm = 0;
                    for (int k = 0; k < dir.Length; k++) { dir[k] = rng.NextDouble() * 2 - 1; norm += dir[k] * dir[k]; }
                    norm = Math.Sqrt(norm);
                    for (int k = 0; k < dir.Length; k++) dir[k] /= norm;
                }
                else dir[p] = 1;
                double lp = Evaluate(x, x0, dir, +o.Eps, Loss), lm = Evaluate(x, x0, dir, -o.Eps, Loss);
                double numeric = (lp - lm) / (2 * o.Eps);
                double an = 0;
                for (int k = 0; k < dir.Length; k++) an += analytic[i][k] * dir[k];
                double err = Math.Abs(numeric - an), allowed = o.Atol + o.Rtol * Math.Abs(numeric);
                if (err / allowed > worst) { worst = err / allowed; worstText = $"probe {p}: analytic {an:G6} numeric {numeric:G6}"; }
            }
            x.CopyFrom(x0);
            bool ok = worst <= 1;
            passed &= ok;
            report.Add($"input {i} {x.ShapeString}: {(ok ? "ok" : "FAILED")}, worst {100 * worst:F0}% of tolerance ({worstText})");
        }
        return new GradcheckResult(passed, report);
    }

    /// <summary>
    /// The float64 check: finite differences (eps 1e-6) of a float64 reference forward — plain loops over double arrays,
    /// one per input — against the engine's autograd gradient. Default tolerances atol 1e-5, rtol 1e-3 (of the
    /// larger of |numeric| and the Σ|terms| scale the caller may fold into rtol).
    /// </summary>
    public static GradcheckResult CheckAgainstReference(Func<Variable[], Variable> engine, Func<double[][], double[]> reference,
        Variable[] inputs, GradcheckOptions? options = null)
    {
        var o = options ?? new GradcheckOptions { Eps = 1e-6, Atol = 1e-5, Rtol = 1e-3 };
        var (w, analytic) = AnalyticGradients(engine, inputs, o.Seed);
        var x = inputs.Select(v => Array.ConvertAll(v.Data.ToArray(), f => (double)f)).ToArray();
        double Loss(double[][] xs)
        {
            var y = reference(xs);
            if (y.Length != w.Length) throw new ArgumentException($"Gradcheck: reference gave {y.Length} outputs, the engine {w.Length}");
            double s = 0;
            for (int k = 0; k < y.Length; k++) s += w[k] * y[k];
            return s;
        }

        var report = new List<string>();
        bool passed = true;
        var rng = new Random((int)(o.Seed % int.MaxValue));
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!inputs[i].RequiresGrad) continue;
            int probes = o.RandomDirections > 0 ? o.RandomDirections : x[i].Length;
            double worst = 0;
            string worstText = "";
            var orig = (double[])x[i].Clone();
            for (int p = 0; p < probes; p++)
            {
                var dir = new double[orig.Length];
                if (o.RandomDirections > 0)
                {
                    double norm = 0;
                    for (int k = 0; k < dir.Length; k++) { dir[k] = rng.NextDouble() * 2 - 1; norm += dir[k] * dir[k]; }
                    for (int k = 0; k < dir.Length; k++) dir[k] /= Math.Sqrt(norm);
                }
                else dir[p] = 1;
                for (int k = 0; k < dir.Length; k++) x[i][k] = orig[k] + o.Eps * dir[k];
                double lp = Loss(x);
                for (int k = 0; k < dir.Length; k++) x[i][k] = orig[k] - o.Eps * dir[k];
                double lm = Loss(x);
                Array.Copy(orig, x[i], orig.Length);
                double numeric = (lp - lm) / (2 * o.Eps), an = 0;
                for (int k = 0; k < dir.Length; k++) an += analytic[i][k] * dir[k];
                double err = Math.Abs(numeric - an), allowed = o.Atol + o.Rtol * Math.Abs(numeric);
                if (err / allowed > worst) { worst = err / allowed; worstText = $"probe {p}: engine {an:G7} float64 numeric {numeric:G7}"; }
            }
            bool ok = worst <= 1;
            passed &= ok;
            report.Add($"input {i} {inputs[i].Data.ShapeString}: {(ok ? "ok" : "FAILED")}, worst {100 * worst:F0}% of tolerance ({worstText})");
        }
        return new GradcheckResult(passed, report);
    }

    /// <summary>One backward pass of Σ w∘f(x) for a fixed random w: returns w and each input's gradient (zeros if none).</summary>
    static (float[] W, double[][] Analytic) AnalyticGradients(Func<Variable[], Variable> f, Variable[] inputs, ulong seed)
    {
        float[] w;
        var analytic = new double[inputs.Length][];
        foreach (var v in inputs) v.ZeroGrad();
        using (new Graph())
        {
            var y = f(inputs);
            w = RandomWeights(y.Data.Numel, seed);
            using var seedGrad = inputs[0].Backend.FromArray(w, y.Shape);
            y.Backward(seedGrad);
        }
        for (int i = 0; i < inputs.Length; i++)
        {
            analytic[i] = inputs[i].Grad is { } gr ? Array.ConvertAll(gr.ToArray(), v => (double)v) : new double[inputs[i].Data.Numel];
            inputs[i].ZeroGrad();
        }
        return (w, analytic);
    }

    static double Evaluate(Tensor x, float[] x0, double[] dir, double eps, Func<double> loss)
    {
        var shifted = new float[x0.Length];
        for (int k = 0; k < x0.Length; k++) shifted[k] = (float)(x0[k] + eps * dir[k]);
        x.CopyFrom(shifted);
        return loss();
    }

    static float[] RandomWeights(long n, ulong seed)
    {
        var r = new Random((int)(seed % int.MaxValue) + 1);
        var w = new float[n];
        for (long i = 0; i < n; i++) w[i] = (float)(r.NextDouble() * 2 - 1);
        return w;
    }
}
