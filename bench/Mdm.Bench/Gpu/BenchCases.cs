using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Bench.Gpu;

/// <summary>Tensors a case needs, disposed together.</summary>
public sealed class BenchState(params Tensor[] tensors) : IDisposable
{
    public Tensor this[int i] => tensors[i];
    public void Dispose() { foreach (var t in tensors) t.Dispose(); }
}

/// <summary>One benchmark: op name, shape, the bytes it must move (for GB/s) and flops (for TFLOP/s).</summary>
public sealed record BenchCase(string Op, int[] Shape, double Bytes, double Flops, Func<Backend, BenchState> Setup, Action<BenchState> Run)
{
    public string ShapeText => string.Join("x", Shape);
}

/// <summary>
/// The shared case list. Keep in step with scripts/gpu/torch_bench.py (same op names and shapes).
/// Bytes: elementwise = (inputs read + outputs written)·4; the copy is the device-to-device bandwidth yardstick.
/// </summary>
public static class BenchCases
{
    static void SetGemmAlgorithm(Tensor t, string? variant)
    {
        if (t.Backend is Mdm.Kernels.Gpu.IlgpuBackend g) g.GemmAlgorithm = variant;
    }

    static void SetConvAlgorithm(Tensor t, string? variant)
    {
        if (t.Backend is Mdm.Kernels.Gpu.IlgpuBackend g) g.ConvAlgorithm = variant;
    }

    public static IEnumerable<BenchCase> All(bool quick)
    {
        int[] act = quick ? [2, 8, 9, 9] : [16, 256, 64, 64];       // a 64² UNet activation at batch 16
        int[] rows = quick ? [7, 113] : [4096, 4096];
        long n = Kernels.Shape.Numel(act), nr = Kernels.Shape.Numel(rows);

        Tensor R(Backend b, int[] s, ulong seed) => Ops.RandomNormal(b.Empty(s), seed);

        yield return new("copy", act, 8.0 * n, 0, b => new(R(b, act, 1), b.Empty(act)), s => Ops.Copy(s[0], s[1]));
        yield return new("add", act, 12.0 * n, n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.Add(s[0], s[1], s[2]));
        int[] biasShape = [1, act[1], 1, 1];
        yield return new("add_bias", act, 8.0 * n, n, b => new(R(b, act, 1), R(b, biasShape, 2), b.Empty(act)), s => Ops.Add(s[0], s[1], s[2]));
        yield return new("mul", act, 12.0 * n, n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.Mul(s[0], s[1], s[2]));
        yield return new("silu_fwd", act, 8.0 * n, 4.0 * n, b => new(R(b, act, 1), b.Empty(act)), s => Ops.Silu(s[0], s[1]));
        yield return new("silu_bwd", act, 12.0 * n, 8.0 * n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.SiluBackward(s[0], s[1], s[2]));
        yield return new("sum_rows", rows, 4.0 * nr, nr, b => new(R(b, rows, 1), b.Empty(rows[0])), s => Ops.Sum(s[0], [1], false, s[1]));
        yield return new("sum_nhw", act, 4.0 * n, n, b => new(R(b, act, 1), b.Empty(act[1])), s => Ops.Sum(s[0], [0, 2, 3], false, s[1]));

        // GroupNorm(32) + FiLM + SiLU, fused: reads x once, writes y once (+ tiny a, b, gamma, beta).
        int[] film = [act[0], act[1]];
        int groups = Math.Min(32, act[1]);
        yield return new("gn_film_silu_fwd", act, 8.0 * n, 10.0 * n,
            b => new(R(b, act, 1), b.Full(1f, act[1]), b.Zeros(act[1]), R(b, film, 2), R(b, film, 3), b.Empty(act), b.Empty(act[0], groups), b.Empty(act[0], groups)),
            s => Ops.GroupNormFilmSilu(s[0], groups, s[1], s[2], s[3], s[4], 1e-5f, s[5], s[6], s[7]));

        // Matmul: bf16 storage, f32 accumulation (tensor cores on CUDA). FLOPs 2·M·N·K; shapes M×N×K: the 4096³ yardstick,
        // then the UNet's own: a 64² level's 1×1 conv / qkv projection (16·32² tokens × 256 → 768), an MLP (4096 × 768 → 3072)
        // and a weight gradient (768 × 256 over 16384 tokens: few output tiles, long K).
        int[][] gemms = quick ? [[33, 40, 24]] : [[4096, 4096, 4096], [16384, 768, 256], [4096, 3072, 768], [768, 256, 16384]];
        foreach (var g in gemms)
        {
            int gm = g[0], gn = g[1], gk = g[2];
            double operandBytes = 2.0 * ((double)gm * gk + (double)gk * gn);
            // matmul_bf16: f32 C, the default variant (tuning table, else layout by K); _w4 / _w8 / _splitk: 4 warps of
            // 64×64 / 8 warps of 64×32 / split-K forced; _bf16out: a bf16 C (what PyTorch's bf16 matmul returns).
            foreach (var (name, variant) in new (string, string?)[] { ("matmul_bf16", null), ("matmul_bf16_w4", GemmVariant.Wide),
                         ("matmul_bf16_w8", GemmVariant.Narrow), ("matmul_bf16_splitk", GemmVariant.SplitK) })
                yield return new(name, g, operandBytes + 4.0 * gm * gn, 2.0 * gm * gn * gk,
                    b => new(Ops.ToBF16(R(b, [gm, gk], 1)), Ops.ToBF16(R(b, [gk, gn], 2)), b.Empty(gm, gn)),
                    s => { SetGemmAlgorithm(s[0], variant); Ops.MatMul(s[0], s[1], false, false, s[2]); });
            yield return new("matmul_bf16_bf16out", g, operandBytes + 2.0 * gm * gn, 2.0 * gm * gn * gk,
                b => new(Ops.ToBF16(R(b, [gm, gk], 1)), Ops.ToBF16(R(b, [gk, gn], 2)), b.Empty(DType.BF16, gm, gn)),
                s => { SetGemmAlgorithm(s[0], null); Ops.MatMul(s[0], s[1], false, false, s[2]); });
        }
        int mm = quick ? 33 : 4096;
        int[] sq = [mm, mm, mm];
        yield return new("matmul_f32", sq, 3.0 * 4 * mm * mm, 2.0 * mm * mm * mm,
            b => new(R(b, [mm, mm], 1), R(b, [mm, mm], 2), b.Empty(mm, mm)), s => Ops.MatMul(s[0], s[1], false, false, s[2]));

        // Attention at the 64² model's shapes: [B, 8 heads, N, D]. FLOPs 4·B·H·N²·D forward, 2.5× that for backward.
        foreach (var (nTok, d) in new[] { (quick ? 17 : 1024, quick ? 8 : 64), (quick ? 9 : 256, quick ? 8 : 96) })
        {
            int[] qs = [quick ? 1 : 16, 8, nTok, d];
            double f = 4.0 * qs[0] * qs[1] * (double)nTok * nTok * d;
            long e = Kernels.Shape.Numel(qs);
            yield return new("attention_fwd", qs, 16.0 * e, f,
                b => new(R(b, qs, 1), R(b, qs, 2), R(b, qs, 3), b.Empty(qs), b.Empty(qs[0], qs[1], nTok)),
                s => Ops.Attention(s[0], s[1], s[2], null, s[3], s[4]));
            yield return new("attention_bwd", qs, 36.0 * e, 2.5 * f,
                b =>
                {
                    var q = R(b, qs, 1); var k = R(b, qs, 2); var v = R(b, qs, 3);
                    var (o, lse) = Ops.Attention(q, k, v);
                    return new(q, k, v, o, lse, R(b, qs, 4), b.Empty(qs), b.Empty(qs), b.Empty(qs));
                },
                s => Ops.AttentionBackward(s[0], s[1], s[2], s[3], s[4], s[5], null, s[6], s[7], s[8]));
        }

        // Conv 3×3, stride 1, pad 1 at a 64² UNet level, bf16 x and weight (f32 out; tensor cores on CUDA): FLOPs 2·N·Cout·H·W·Cin·9.
        int[] cx = quick ? [1, 4, 9, 9] : [16, 256, 64, 64];
        int[] cw = [cx[1], cx[1], 3, 3];
        double convFlops = 2.0 * cx[0] * cx[1] * cx[2] * cx[3] * cx[1] * 9;
        yield return new("conv3x3_fwd", cx, 8.0 * Kernels.Shape.Numel(cx), convFlops,
            b => new(Ops.ToBF16(R(b, cx, 1)), Ops.ToBF16(R(b, cw, 2)), R(b, [cx[1]], 3), b.Empty(cx)),
            s => { SetGemmAlgorithm(s[0], null); SetConvAlgorithm(s[0], null); Ops.Conv2d(s[0], s[1], s[2], 1, 1, s[3]); });
        // Backward: input and weight gradient. "@variant" forces a ConvAlgorithm (compare.py joins it with PyTorch's
        // row of the op before the "@"); without it the tuning table picks.
        foreach (var variant in new string?[] { null, ConvVariant.ImplicitNarrow, ConvVariant.ImplicitWide })
        {
            string suffix = variant is null ? "" : "@" + variant;
            if (variant is not null)
                yield return new("conv3x3_fwd" + suffix, cx, 8.0 * Kernels.Shape.Numel(cx), convFlops,
                    b => new(Ops.ToBF16(R(b, cx, 1)), Ops.ToBF16(R(b, cw, 2)), R(b, [cx[1]], 3), b.Empty(cx)),
                    s => { SetConvAlgorithm(s[0], variant); Ops.Conv2d(s[0], s[1], s[2], 1, 1, s[3]); });
            yield return new("conv3x3_bwd" + suffix, cx, 12.0 * Kernels.Shape.Numel(cx), 2 * convFlops,
                b => new(Ops.ToBF16(R(b, cx, 1)), Ops.ToBF16(R(b, cw, 2)), Ops.ToBF16(R(b, cx, 4)), b.Empty(cx), b.Empty(cw)),
                s =>
                {
                    SetConvAlgorithm(s[0], variant);
                    Ops.Conv2dBackwardInput(s[2], s[1], cx, 1, 1, s[3]);
                    Ops.Conv2dBackwardWeight(s[2], s[0], cw, 1, 1, s[4]);
                });
        }

        // Fused Adam + clip over a flat parameter vector (25M params, ~the 64→256 outer level): reads p, g, m, v; writes p, m, v.
        int np = quick ? 1000 : 25_000_000;
        yield return new("adam_clip", [np], 28.0 * np, 0,
            b => new(R(b, [np], 1), R(b, [np], 2), b.Zeros(np), b.Zeros(np), b.Full(3f, 1)),
            s => Ops.AdamStep(s[0], s[1], s[2], s[3], AdamOptions.AdamW(1e-4, 0), 10, s[4], 2f));
        yield return new("ema", [np], 12.0 * np, 0, b => new(R(b, [np], 1), R(b, [np], 2)), s => Ops.EmaUpdate(s[0], s[1], 0.9999f));

        // Every registered op definition (built-in or custom; quick: its check shapes), its forward timed like the rest,
        // named op.<name>. Bytes: the inputs read plus an output the size of the first input written.
        foreach (var op in OpDefinition.Registered.Where(o => o.BenchShapes is not null))
        {
            bool checkShapes = quick && op.Checkable;
            var shapes = checkShapes ? op.CheckShapes! : op.BenchShapes!;
            double bytes = 4.0 * (Kernels.Shape.Numel(shapes[0]) + shapes.Sum(shape => Kernels.Shape.Numel(shape)));
            Func<Tensor[], (Tensor Output, Tensor[] Saved)> forward = checkShapes ? op.ForwardForCheck : op.ForwardForBench;
            yield return new("op." + op.Name, shapes[0], bytes, 0,
                b => new(shapes.Select((shape, i) => R(b, shape, (ulong)i + 1)).ToArray()),
                s =>
                {
                    var (y, saved) = forward(shapes.Select((_, i) => s[i]).ToArray());
                    y.Dispose();
                    foreach (var t in saved) t.Dispose();
                });
        }
    }
}
