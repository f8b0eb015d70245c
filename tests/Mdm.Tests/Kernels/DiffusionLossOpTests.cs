using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>
/// The fused diffusion loss term (target conversion a·p + k·x − t, per-sample MSE, weighting and the sum in one pass)
/// and its one-pass backward against float64, on odd and non-tile shapes, outputs poisoned with NaN.
/// </summary>
[BackendFixtures]
public class DiffusionLossOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<int[]> Shapes() => [[3, 3, 9, 9], [2, 4, 17, 17], [5, 113], [1, 1, 1, 1]];

    (Tensor P, Tensor X, Tensor T, Tensor Coef, double[] Rp, double[] Rx, double[] Rt, double[] Rcoef) Inputs(int[] shape)
    {
        var (p, rp) = Input(shape);
        var (x, rx) = Input(shape);
        var (t, rt) = Input(shape);
        var (coef, rcoef) = Input(shape[0], 3);
        return (p, x, t, coef, rp, rx, rt, rcoef);
    }

    [TestCaseSource(nameof(Shapes))]
    public void DiffusionLossForward(int[] shape)
    {
        var (p, x, t, coef, rp, rx, rt, rcoef) = Inputs(shape);
        using (p) using (x) using (t) using (coef)
        {
            int n = shape[0];
            long rowLen = Shape.Numel(shape) / n;
            using var perSample = Poisoned(n);
            using var loss = Poisoned();
            Ops.DiffusionLoss(p, x, t, coef, perSample, loss);
            var (expected, expectedRows) = Ref.DiffusionLoss(rp, rx, rt, rcoef);
            var sum = new Tolerance(1e-7, 4 * 6e-8 * Math.Sqrt(rowLen) + 1e-6);
            Compare.AssertClose(Name("DiffusionLoss per sample", shape), perSample, expectedRows, sum);
            double magnitude = Enumerable.Range(0, n).Sum(i => Math.Abs(rcoef[3 * i + 2]) * expectedRows[i]);
            Compare.AssertClose(Name("DiffusionLoss", shape), loss, [expected], sum, [magnitude]);
        }
    }

    [TestCaseSource(nameof(Shapes))]
    public void DiffusionLossBackward(int[] shape)
    {
        var (p, x, t, coef, rp, rx, rt, rcoef) = Inputs(shape);
        var (g, rg) = Input();
        using (p) using (x) using (t) using (coef) using (g)
        {
            var (edp, edx, edt, _) = Ref.DiffusionLossBackward(rp, rx, rt, rcoef, rg[0]);
            using var dp = Poisoned(shape);
            using var dx = Poisoned(shape);
            using var dt = Poisoned(shape);
            Ops.DiffusionLossBackward(p, x, t, coef, g, dp, dx, dt);
            Compare.AssertClose(Name("DiffusionLossBackward dp", shape), dp, edp, Tolerance.F32Elementwise);
            Compare.AssertClose(Name("DiffusionLossBackward dx", shape), dx, edx, Tolerance.F32Elementwise);
            Compare.AssertClose(Name("DiffusionLossBackward dt", shape), dt, edt, Tolerance.F32Elementwise);

            using var onlyP = Poisoned(shape);
            Ops.DiffusionLossBackward(p, x, t, coef, g, onlyP);
            Compare.AssertClose(Name("DiffusionLossBackward dp alone", shape), onlyP, edp, Tolerance.F32Elementwise);
            Compare.AssertClose(Name("prediction after the backward", shape), p, rp, Tolerance.F32Exact);
        }
    }

    /// <summary>Through the op definition: the unfused chain (Mul, Add, MseLossPerSample, Mul, Sum) gives the same
    /// loss and prediction gradient, and the per-sample output holds the unweighted L_n.</summary>
    [Test]
    public void MatchesTheUnfusedChain()
    {
        int[] shape = [3, 3, 9, 9];
        var (p, x, t, coef, _, _, _, rcoef) = Inputs(shape);
        using (x) using (t) using (coef)
        {
            float[] Column(int c) => Enumerable.Range(0, 3).Select(i => (float)rcoef[3 * i + c]).ToArray();
            using var a = B.FromArray(Column(0), 3, 1, 1, 1);
            using var k = B.FromArray(Column(1), 3, 1, 1, 1);
            using var w = B.FromArray(Column(2), 3);
            var pv = new Variable(p, requiresGrad: true);
            float fused, unfused;
            float[] fusedGrad, unfusedGrad;
            using var perSample = Poisoned(3);
            using (var graph = new Graph())
            {
                var loss = F.DiffusionLoss(pv, new Variable(x), new Variable(t), new Variable(coef), perSample);
                loss.Backward();
                fused = loss.Data.ToArray()[0];
                fusedGrad = pv.Grad!.ToArray();
            }
            pv.ZeroGrad();
            float[] rows;
            using (var graph = new Graph())
            {
                var estimate = F.Add(F.Mul(pv, new Variable(a)), F.Mul(new Variable(x), new Variable(k)));
                var perRow = F.MseLossPerSample(estimate, new Variable(t));
                rows = perRow.Data.ToArray();
                var loss = F.Sum(F.Mul(perRow, new Variable(w)));
                loss.Backward();
                unfused = loss.Data.ToArray()[0];
                unfusedGrad = pv.Grad!.ToArray();
            }
            pv.Dispose();
            Compare.AssertClose("per-sample losses", perSample, Array.ConvertAll(rows, v => (double)v), new Tolerance(1e-6, 1e-5));
            Compare.AssertClose("fused loss", [fused], [unfused], new Tolerance(1e-6, 1e-5));
            Compare.AssertClose("fused prediction gradient", fusedGrad, Array.ConvertAll(unfusedGrad, v => (double)v), new Tolerance(1e-7, 1e-5));
        }
    }
}
