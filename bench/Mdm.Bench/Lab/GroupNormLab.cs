using Mdm.Bench.Gpu;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Bench.Lab;

/// <summary>
/// Kernel lab: fused GroupNorm + FiLM + SiLU forward on the GPU, versions side by side, checked against v1 and timed.
/// All three live in src/Mdm.Kernels/Ops/Norm (NormKernels, NormKernels.Variants.cs) and are picked per GPU and row
/// length by the tuning table's "groupnorm" entries; this lab is their A/B at a glance.
///   v1  two-pass (NormKernels.GroupNormForward): mean, centred variance, normalise — three sweeps over the group, two
///       block reductions (0.0885 ms at 16×256×64², 39 % of copy bandwidth on the H200)
///   v2  one-pass: shifted sums Σ(x − s), Σ(x − s)² (s = the row's first element, so data far from 0 do not cancel),
///       one block reduction, then the normalise sweep. Prediction: ~0.065 ms at 16×256×64². Not yet run on a GPU.
///   v3  warp rows: v2's statistics with one warp per (n, g) row, eight rows per 256-thread group, shuffles only — for
///       the small rows of the low resolutions, where a 512-thread group per row idles.
/// run: dotnet run -c Release --project bench/Mdm.Bench -- lab groupnorm [--device cuda|ilgpu-cpu]
/// Bytes counted: x read once + y written once (8 bytes per element), as in BenchCases.
/// </summary>
public static class GroupNormLab
{
    static readonly string[] Versions = [GroupNormVariant.TwoPass, GroupNormVariant.OnePass, GroupNormVariant.WarpRows];

    public static int Run(string[] args)
    {
        string device = args.Length == 2 && args[0] == "--device" ? args[1] : "cuda";
        Backend backend;
        try { backend = Backends.Create(Backends.Parse(device)); }
        catch (Exception e) { Console.Error.WriteLine($"lab groupnorm: cannot start '{device}': {e.Message}"); return 1; }
        if (backend is not IlgpuBackend b) { Console.Error.WriteLine("lab groupnorm: needs cuda or ilgpu-cpu"); backend.Dispose(); return 2; }
        using (b)
        {
            bool cuda = b.Kind == BackendKind.Cuda;
            Console.WriteLine($"{b.Info}");
            Console.WriteLine("shape              version    ms      GB/s   max|dy|    max|dmean| max|drstd|/rstd  (against v1)");
            int[][] shapes = cuda ? [[16, 256, 64, 64], [16, 512, 32, 32], [8, 128, 128, 128], [16, 1024, 8, 8]] : [[2, 16, 9, 9], [1, 32, 24, 40]];
            foreach (var s in shapes)
            {
                int n = s[0], c = s[1], groups = Math.Min(32, c / 2);
                using var x = Ops.RandomNormal(b.Empty(s), 1);
                using var five = b.Full(5f, 1);
                using var shifted = Ops.Add(Ops.Scale(x, 3f, x), five);   // data away from zero: the shifted sums must not cancel
                using var gamma = Ops.RandomNormal(b.Empty(c), 2);
                using var beta = Ops.RandomNormal(b.Empty(c), 3);
                using var fa = Ops.RandomNormal(b.Empty(n, c), 4);
                using var fb = Ops.RandomNormal(b.Empty(n, c), 5);
                using var y1 = b.Empty(s); using var m1 = b.Empty(n, groups); using var r1 = b.Empty(n, groups);
                using var y = b.Empty(s); using var mean = b.Empty(n, groups); using var rstd = b.Empty(n, groups);
                double bytes = 8.0 * Shape.Numel(s);
                for (int v = 0; v < Versions.Length; v++)
                {
                    b.GroupNormForwardVariant = Versions[v];
                    try
                    {
                        foreach (var t in new[] { y, mean, rstd }) Ops.Fill(t, float.NaN);
                        void Forward() => Ops.GroupNormFilmSilu(shifted, groups, gamma, beta, fa, fb, 1e-5f, v == 0 ? y1 : y, v == 0 ? m1 : mean, v == 0 ? r1 : rstd);
                        Forward(); b.Synchronize();
                        double dy = v == 0 ? 0 : MaxDiff(y1, y), dm = v == 0 ? 0 : MaxDiff(m1, mean), dr = v == 0 ? 0 : MaxRelDiff(r1, rstd);
                        double ms = cuda ? DeviceTimer.MeanMs(b, Forward, 5, 50) : double.NaN;
                        Console.WriteLine($"{string.Join("x", s),-18} v{v + 1} {Versions[v],-10}{ms,8:F4}  {bytes / (ms * 1e6),7:F0}   {dy,9:G3}   {dm,9:G3}   {dr,9:G3}");
                        if (!(dy < 1e-3 && dm < 1e-4 && dr < 1e-4)) { Console.Error.WriteLine($"lab groupnorm: v{v + 1} disagrees with v1"); return 1; }
                    }
                    finally { b.GroupNormForwardVariant = null; }
                }
            }
        }
        return 0;
    }

    static double MaxDiff(Tensor a, Tensor b)
    {
        var (x, y) = (a.ToArray(), b.ToArray());
        double d = 0;
        for (int i = 0; i < x.Length; i++) d = Math.Max(d, float.IsNaN(y[i]) ? double.PositiveInfinity : Math.Abs(x[i] - y[i]));
        return d;
    }

    static double MaxRelDiff(Tensor a, Tensor b)
    {
        var (x, y) = (a.ToArray(), b.ToArray());
        double d = 0;
        for (int i = 0; i < x.Length; i++) d = Math.Max(d, float.IsNaN(y[i]) ? double.PositiveInfinity : Math.Abs(x[i] - y[i]) / Math.Abs(x[i]));
        return d;
    }
}
