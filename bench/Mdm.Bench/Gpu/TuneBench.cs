using System.Globalization;
using System.Text;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Bench.Gpu;

/// <summary>
/// `tune [--device cuda|ilgpu-cpu] [--quick] [--out DIR] [--budget-s S]`: for each shape class the configs run, every variant of the
/// bf16 GEMM (warp layouts narrow = reference, wide; the short-K tiles bk32, m64-bk32; split-k; wgmma on sm_90) and of attention forward / backward (simt = reference,
/// tensor-core) and of the bf16 convolution's forward, input and weight gradient (im2col = reference, implicit-narrow,
/// implicit-wide) is checked against the reference variant and timed with device events after a warm-up; the fastest
/// variant that agrees goes into DIR/tuning.json (the format of src/Mdm.Kernels/Gpu/Tuning/tuning.json) and every
/// timing into DIR/tune.md. With --budget-s no new shape class starts S seconds after the kernels are loaded (the table then holds the classes
/// timed so far; the rest keep the fallback). Exit code 1 when a variant disagrees with its reference, 2 for bad arguments.
/// FLOPs: GEMM 2·M·N·K; attention forward 4·BH·N²·D, backward 10·BH·N²·D (with the recomputed S and dP); each
/// convolution pass 2·B·Cout·Ho·Wo·Cin·K².
/// </summary>
public static class TuneBench
{
    const double GemmTolerance = 1e-3, AttentionTolerance = 2e-2;

    /// <summary>One variant on one shape. OnTensorCores: it ran its own kernel (a tensor-core variant may fall back);
    /// Bytes: for memory-bound ops (GroupNorm), the traffic its GB/s is counted from.</summary>
    sealed record Timing(string Op, string ShapeClass, TuneShape Shape, string Variant, double Ms, double Flops, double Error, bool OnTensorCores, double Bytes = 0);

    public static int Run(string[] args)
    {
        string device = "cuda", outDir = ".";
        bool quick = false;
        double budgetS = double.PositiveInfinity;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--device" when i + 1 < args.Length: device = args[++i]; break;
                case "--out" when i + 1 < args.Length: outDir = args[++i]; break;
                case "--quick": quick = true; break;
                case "--budget-s" when i + 1 < args.Length && double.TryParse(args[i + 1], CultureInfo.InvariantCulture, out budgetS) && budgetS > 0: i++; break;
                default: Console.Error.WriteLine($"tune: unknown or bad argument '{args[i]}' (use --device, --out, --quick, --budget-s SECONDS > 0)"); return 2;
            }
        }
        string configs = Path.Combine(Environment.GetEnvironmentVariable("MDM_REPO_ROOT") ?? ".", "configs");
        if (!Directory.Exists(configs)) { Console.Error.WriteLine($"tune: {configs} not found (run from the repository root or set MDM_REPO_ROOT)"); return 2; }
        var paths = Directory.GetFiles(configs, "*.json").Order(StringComparer.Ordinal).ToList();
        // Quick: tiny shapes (the CPU accelerator runs each simulated thread as an OS thread), a few classes.
        var shapes = quick ? TuneShapes.FromConfigs(paths, 1, 24, 16) : TuneShapes.FromConfigs(paths, 8, 16384, 4096);

        Backend backend;
        try { backend = Backends.Create(Backends.Parse(device)); }
        catch (Exception e) { Console.Error.WriteLine($"tune: cannot start '{device}': {e.Message}"); return 1; }
        if (backend is not IlgpuBackend b) { backend.Dispose(); Console.Error.WriteLine("tune: needs an ILGPU backend (cuda or ilgpu-cpu)"); return 2; }
        using (b)
        {
            // The CPU accelerator has no tensor cores: its table (sm_0) only proves the mode runs.
            string gpu = b.GpuArchitecture ?? "sm_0";
            Console.WriteLine($"tune: {b.Info.Name} ({gpu}), {shapes.Count} shape classes from {paths.Count} configs");
            var clock = System.Diagnostics.Stopwatch.StartNew();   // after loading the kernels
            int warmup = quick ? 1 : 2, reps = quick ? 1 : 10;
            var timings = new List<Timing>();
            Directory.CreateDirectory(outDir);
            foreach (var (s, i) in shapes.Select((s, i) => (s, i)))
            {
                if (clock.Elapsed.TotalSeconds > budgetS)
                {
                    Console.WriteLine($"tune: budget of {budgetS:F0} s spent, {shapes.Count - i} shape classes left untimed (they keep the fallback)");
                    break;
                }
                timings.AddRange(s.Op switch
                {
                    "gemm" => TuneGemm(b, s, warmup, reps),
                    "conv" => TuneConv(b, s, warmup, reps, timings.Select(t => (t.Op, t.ShapeClass)).ToHashSet()),
                    "groupnorm" => TuneGroupNorm(b, s, warmup, reps),
                    _ => TuneAttention(b, s, warmup, reps),
                });
                Write(b, gpu, quick, outDir, timings);   // after every class, so an outer timeout still leaves a table
            }
            b.GemmAlgorithm = null;
            b.UseWgmmaGemm = null;
            b.UseTensorCoreAttention = null;
            b.ConvAlgorithm = null;
            b.GroupNormForwardVariant = null;
            int entries = Write(b, gpu, quick, outDir, timings);
            Console.WriteLine($"wrote {entries} entries to {Path.Combine(outDir, "tuning.json")} and the timings to {Path.Combine(outDir, "tune.md")}");
            bool agree = timings.All(t => t.Error <= Tolerance(t.Op));
            if (!agree) Console.Error.WriteLine("tune: a variant DISAGREES with its reference (see tune.md); it was not chosen");
            return agree ? 0 : 1;
        }
    }

    /// <summary>Writes DIR/tuning.json (the winners so far) and DIR/tune.md; returns the number of table entries.</summary>
    static int Write(IlgpuBackend b, string gpu, bool quick, string outDir, List<Timing> timings)
    {
        var rows = timings.GroupBy(t => (t.Op, t.ShapeClass)).Select(g => ((gpu, g.Key.Op, g.Key.ShapeClass), Winner(g.ToList()).Variant));
        string path = Path.Combine(outDir, "tuning.json");
        var table = TuningTable.From(path, rows);
        File.WriteAllText(path, table.ToJson(new Dictionary<string, string> { [gpu] = $"{b.Info.Name}, Mdm.Bench tune{(quick ? " --quick" : "")}" }));
        File.WriteAllText(Path.Combine(outDir, "tune.md"), Markdown(b, gpu, timings));
        return table.Entries.Count;
    }

    /// <summary>The fastest variant that agrees with the reference and ran its own kernel (a tensor-core variant that
    /// fell back to SIMT, as on the CPU accelerator or for an unsupported head dim, is not eligible); else the reference.</summary>
    static Timing Winner(List<Timing> variants) =>
        variants.Where(t => t.Error <= Tolerance(t.Op) && (t == variants[0] || t.OnTensorCores)).MinBy(t => t.Ms) ?? variants[0];

    /// <summary>GEMM and convolution variants sum the same bf16 products in another order; attention rounds P to bf16.</summary>
    static double Tolerance(string op) => op is TuningTable.GemmOp or TuningTable.ConvOp or TuningTable.GroupNormOp ? GemmTolerance : AttentionTolerance;

    static IEnumerable<Timing> TuneGemm(IlgpuBackend b, TuneShape s, int warmup, int reps)
    {
        using var a = Ops.ToBF16(Ops.RandomNormal(b.Empty(s.M, s.K), 1));
        using var w = Ops.ToBF16(Ops.RandomNormal(b.Empty(s.K, s.N), 2));
        float[]? reference = null;
        foreach (var variant in TuningTable.Variants[TuningTable.GemmOp])
        {
            using var c = b.Full(float.NaN, s.M, s.N);
            b.GemmAlgorithm = variant;
            long before = variant == GemmVariant.Wgmma ? b.WgmmaGemms : b.TensorCoreGemms;
            void Run() => Ops.MatMul(a, w, false, false, c);
            Run();
            bool onTensorCores = (variant == GemmVariant.Wgmma ? b.WgmmaGemms : b.TensorCoreGemms) > before;   // wgmma: sm_90 only
            var values = c.ToArray();
            reference ??= values;
            double ms = DeviceTimer.MeanMs(b, Run, warmup, reps);
            yield return Report(new(TuningTable.GemmOp, TuneShapes.GemmClass(s.M, s.N, s.K), s, variant, ms, 2.0 * s.M * s.N * s.K, RelativeDifference(reference, values), onTensorCores));
        }
    }

    static IEnumerable<Timing> TuneAttention(IlgpuBackend b, TuneShape s, int warmup, int reps)
    {
        int[] shape = [1, s.M, s.N, s.K];
        using var q = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 11));
        using var k = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 12));
        using var v = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 13));
        using var gradO = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 14));
        double flops = 4.0 * s.M * (double)s.N * s.N * s.K;
        string shapeClass = ShapeClass.Attention(s.N, s.K);
        float[]? refO = null, refGrad = null;
        foreach (var variant in TuningTable.Variants[TuningTable.AttentionForwardOp])
        {
            b.UseTensorCoreAttention = variant == AttentionVariant.TensorCore;
            using var o = b.Full(float.NaN, shape);
            using var lse = b.Full(float.NaN, 1, s.M, s.N);
            using var dq = b.Full(float.NaN, shape);
            using var dk = b.Full(float.NaN, shape);
            using var dv = b.Full(float.NaN, shape);
            void Forward() => Ops.Attention(q, k, v, null, o, lse);
            void Backward() => Ops.AttentionBackward(q, k, v, o, lse, gradO, null, dq, dk, dv);
            long before = b.TensorCoreAttentions;
            Forward();
            bool fwdTc = b.TensorCoreAttentions > before;
            Backward();
            bool bwdTc = b.TensorCoreAttentions > before + (fwdTc ? 1 : 0);
            float[] os = o.ToArray(), grads = [.. dq.ToArray(), .. dk.ToArray(), .. dv.ToArray()];
            refO ??= os;
            refGrad ??= grads;
            double fwdMs = DeviceTimer.MeanMs(b, Forward, warmup, reps), bwdMs = DeviceTimer.MeanMs(b, Backward, warmup, reps);
            yield return Report(new(TuningTable.AttentionForwardOp, shapeClass, s, variant, fwdMs, flops, RelativeDifference(refO, os), fwdTc));
            yield return Report(new(TuningTable.AttentionBackwardOp, shapeClass, s, variant, bwdMs, 2.5 * flops, RelativeDifference(refGrad, grads), bwdTc));
        }
    }

    /// <summary>Forward, input gradient and weight gradient of a 3×3 (or K×K) same-padded convolution per variant; a
    /// pass whose shape class an earlier shape measured is skipped. OnTensorCores = the implicit-GEMM kernel ran.</summary>
    static IEnumerable<Timing> TuneConv(IlgpuBackend b, TuneShape s, int warmup, int reps, HashSet<(string, string)> measured)
    {
        int pad = s.K / 2;
        int[] xs = [s.Batch, s.M, s.N, s.N], ws = [s.M, s.M, s.K, s.K];
        using var x = Ops.ToBF16(Ops.RandomNormal(b.Empty(xs), 21));
        using var w = Ops.ToBF16(Ops.RandomNormal(b.Empty(ws), 22));
        using var bias = Ops.RandomNormal(b.Empty(s.M), 23);
        using var dy = Ops.ToBF16(Ops.RandomNormal(b.Empty(xs), 24));
        double flops = 2.0 * s.Batch * s.M * s.N * s.N * s.M * s.K * s.K;
        (ConvPass Pass, string Class)[] passes =
        [
            (ConvPass.Forward, ShapeClass.Conv(ConvPass.Forward, s.K, s.M * s.K * s.K)),
            (ConvPass.Dgrad, ShapeClass.Conv(ConvPass.Dgrad, s.K, s.M * s.K * s.K)),
            (ConvPass.Wgrad, ShapeClass.Conv(ConvPass.Wgrad, s.K, s.Batch * s.N * s.N)),
        ];
        var references = new float[3][];
        foreach (var variant in TuningTable.Variants[TuningTable.ConvOp])
        {
            b.ConvAlgorithm = variant;
            for (int i = 0; i < passes.Length; i++)
            {
                if (measured.Contains((TuningTable.ConvOp, passes[i].Class))) continue;
                using var output = b.Full(float.NaN, passes[i].Pass == ConvPass.Wgrad ? ws : xs);
                var o = output;
                Action run = passes[i].Pass switch
                {
                    ConvPass.Forward => () => Ops.Conv2d(x, w, bias, 1, pad, o),
                    ConvPass.Dgrad => () => Ops.Conv2dBackwardInput(dy, w, xs, 1, pad, o),
                    _ => () => Ops.Conv2dBackwardWeight(dy, x, ws, 1, pad, o),
                };
                long before = b.ImplicitGemmConvs;
                run();
                bool implicitGemm = b.ImplicitGemmConvs > before;
                var values = output.ToArray();
                references[i] ??= values;
                double ms = DeviceTimer.MeanMs(b, run, warmup, reps);
                yield return Report(new(TuningTable.ConvOp, passes[i].Class, s, variant, ms, flops, RelativeDifference(references[i], values), implicitGemm));
            }
        }
    }

    /// <summary>GroupNorm + FiLM + SiLU forward, batch × M channels × N², K groups: each statistics variant, against
    /// the two-pass kernel. Bytes: x read once and y written once.</summary>
    static IEnumerable<Timing> TuneGroupNorm(IlgpuBackend b, TuneShape s, int warmup, int reps)
    {
        int[] shape = [s.Batch, s.M, s.N, s.N];
        using var x = Ops.RandomNormal(b.Empty(shape), 21);
        using var gamma = Ops.RandomNormal(b.Empty(s.M), 22);
        using var beta = Ops.RandomNormal(b.Empty(s.M), 23);
        using var fa = Ops.RandomNormal(b.Empty(s.Batch, s.M), 24);
        using var fb = Ops.RandomNormal(b.Empty(s.Batch, s.M), 25);
        string shapeClass = ShapeClass.GroupNorm(s.M / s.K * s.N * s.N);
        double bytes = 8.0 * s.Batch * s.M * s.N * s.N;
        float[]? reference = null;
        foreach (var variant in TuningTable.Variants[TuningTable.GroupNormOp])
        {
            using var y = b.Full(float.NaN, shape);
            b.GroupNormForwardVariant = variant;
            void Run() { var (_, mean, rstd) = Ops.GroupNormFilmSilu(x, s.K, gamma, beta, fa, fb, 1e-5f, y); mean.Dispose(); rstd.Dispose(); }
            Run();
            var values = y.ToArray();
            reference ??= values;
            double ms = DeviceTimer.MeanMs(b, Run, warmup, reps);
            yield return Report(new(TuningTable.GroupNormOp, shapeClass, s, variant, ms, 0, RelativeDifference(reference, values), OnTensorCores: true, bytes));
        }
    }

    static Timing Report(Timing t)
    {
        if (t.Bytes > 0)
        {
            Console.WriteLine($"{t.Op,-19} {t.ShapeClass,-11} {t.Shape.Text,-20} {t.Variant,-12} {t.Ms,9:F4} ms {t.Bytes / (t.Ms * 1e6),8:F0} GB/s     err {t.Error:G3}");
            return t;
        }
        Console.WriteLine($"{t.Op,-19} {t.ShapeClass,-11} {t.Shape.Text,-20} {t.Variant,-12} {t.Ms,9:F4} ms {t.Flops / (t.Ms * 1e9),8:F2} TFLOP/s  err {t.Error:G3}{(t.OnTensorCores ? "" : t.Op == TuningTable.ConvOp ? "  (im2col)" : "  (SIMT kernel)")}");
        return t;
    }

    /// <summary>max |ref − x| / max |ref|; ∞ where x holds a NaN (an element the variant did not write).</summary>
    static double RelativeDifference(float[] reference, float[] x)
    {
        double max = 1e-30, diff = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)reference[i]));
            diff = Math.Max(diff, float.IsNaN(x[i]) ? double.PositiveInfinity : Math.Abs((double)reference[i] - x[i]));
        }
        return diff / max;
    }

    static string Markdown(IlgpuBackend b, string gpu, List<Timing> timings)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Tuning run: {b.Info.Name} ({gpu})");
        md.AppendLine();
        md.AppendLine("TFLOP/s = FLOPs / time: GEMM 2·M·N·K; attention forward 4·BH·N²·D, backward 10·BH·N²·D; conv 2·B·C²·H·W·K² per pass. GroupNorm: GB/s = 8 bytes per element (x read, y written) / time, in the TFLOP/s column. Error: max |Δ| / max |reference| against the first variant. ✓ = chosen.");
        md.AppendLine();
        md.AppendLine("| op | shape class | shape | from | variant | ms | TFLOP/s | error | kernel | |");
        md.AppendLine("|---|---|---|---|---|---:|---:|---:|---|---|");
        foreach (var g in timings.GroupBy(t => (t.Op, t.ShapeClass)))
        {
            var winner = Winner(g.ToList());
            foreach (var t in g)
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {t.Op} | {t.ShapeClass} | {t.Shape.Text} | {t.Shape.From} | {t.Variant} | {t.Ms:F4} | {(t.Bytes > 0 ? $"{t.Bytes / (t.Ms * 1e6):F0} GB/s" : $"{t.Flops / (t.Ms * 1e9):F2}")} | {t.Error:G3} | {(t.Op == TuningTable.GroupNormOp ? t.Variant : t.OnTensorCores ? (t.Op == TuningTable.ConvOp ? "implicit GEMM" : "tensor cores") : (t.Op == TuningTable.ConvOp ? "im2col" : "SIMT"))} | {(t == winner ? "✓" : "")} |");
        }
        return md.ToString();
    }
}
