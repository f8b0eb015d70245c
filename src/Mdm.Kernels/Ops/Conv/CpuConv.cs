using System.Buffers;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// Convolutions on the CPU as matrix products (CpuGemm). A 1×1 stride-1 convolution is a plain GEMM per sample. Any
/// other forward is an implicit GEMM (CpuConv.Gathered.cs): each sample is copied once into padded stride-phase planes
/// and the GEMM reads its B rows straight from them, y[Cout, Ho·Wo] = W[Cout, Cin·kh·kw] · (shifted plane windows).
/// The input gradient is the same implicit GEMM on dy (zero-dilated by the stride) with the flipped kernel; only a
/// padding wider than the kernel falls back to dcol = Wᵀ · dy and col2im (scatter-add) in chunks of samples. The weight
/// gradient reads the same gathered planes, dW = Σₙ dyₙ · (plane windows)ᵀ, computed as dWᵀ = Σₙ (plane windows) · dyₙᵀ
/// from 16 output channels; dbias = Σ dy rows.
/// </summary>
public sealed unsafe partial class CpuBackend
{
    /// <summary>Largest column buffer (floats) of the col2im fallback held at once; a chunk of samples fills at most this much.</summary>
    const long ConvColumnBudget = 1L << 23;
    static int SamplesPerChunk(in Conv2dGeometry g) =>
        (int)Math.Clamp(ConvColumnBudget / Math.Max(1L * g.PatchSize * g.Ho * g.Wo, 1), 1, Math.Max(g.N, 1));

    delegate void ChunkBody(int n0, int nb, float* col);

    /// <summary>Runs body over chunks of samples with a column buffer [nb, Cin·kh·kw, Ho·Wo] rented once for all chunks.</summary>
    static void ForEachChunk(in Conv2dGeometry g, ChunkBody body)
    {
        int chunk = SamplesPerChunk(g);
        float[] colArr = ArrayPool<float>.Shared.Rent((int)((long)chunk * g.PatchSize * g.Ho * g.Wo));
        try
        {
            fixed (float* col = colArr)
                for (int n0 = 0; n0 < g.N; n0 += chunk) body(n0, Math.Min(chunk, g.N - n0), col);
        }
        finally { ArrayPool<float>.Shared.Return(colArr); }
    }

    protected internal override void Conv2dForward(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        var geo = g;
        int p = g.Ho * g.Wo, k = g.PatchSize, cout = g.Cout;
        LaunchLog.CountFlops(2.0 * g.N * cout * p * k);
        float* px = Ptr(x), pw = Ptr(weight), py = Ptr(y);
        if (!geo.IsPointwise)
        {
            GatheredConv(ForwardPlan(geo), g.N, cout, px, (long)g.Cin * g.H * g.W, pw, bias is null ? null : Ptr(bias), py, (long)cout * p);
            return;
        }
        float beta = 0f;
        if (bias is not null)
        {
            // y starts as the bias, and the GEMM accumulates onto it.
            nint ny = (nint)py, nb = (nint)Ptr(bias);
            ParallelRange(g.N * cout, p, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++) new Span<float>((float*)ny + (long)r * p, p).Fill(((float*)nb)[r % cout]);
            });
            beta = 1f;
        }
        // y_n [Cout, HW] = W [Cout, Cin] · x_n [Cin, HW]
        GemmSharedA(g.N, false, cout, p, k, pw, k, px, (long)k * p, py, (long)cout * p, beta);
    }

    protected internal override void Conv2dBackwardInput(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g)
    {
        var geo = g;
        int p = g.Ho * g.Wo, k = g.PatchSize, cout = g.Cout;
        LaunchLog.CountFlops(2.0 * g.N * cout * p * k);
        float* pdy = Ptr(dy), pw = Ptr(weight), pdx = Ptr(dx);
        if (geo.IsPointwise)
        {
            // dx_n [Cin, HW] = Wᵀ [Cin, Cout] · dy_n [Cout, HW]
            GemmSharedA(g.N, true, k, p, cout, pw, k, pdy, (long)cout * p, pdx, (long)k * p, 0f);
            return;
        }
        if (GatheredInputGradient(geo))
        {
            // dx = dy (zero-dilated by the stride) convolved with the flipped kernel, Cout → Cin.
            float[] flipped = ArrayPool<float>.Shared.Rent(cout * k);
            try
            {
                fixed (float* pf = flipped)
                {
                    FlipKernel(geo, pw, pf);
                    GatheredConv(InputGradientPlan(geo), g.N, g.Cin, pdy, (long)cout * p, pf, null, pdx, (long)g.Cin * g.H * g.W);
                }
            }
            finally { ArrayPool<float>.Shared.Return(flipped); }
            return;
        }
        ForEachChunk(geo, (n0, nb, col) =>
        {
            // dcol_n [Cin·kh·kw, Ho·Wo] = Wᵀ · dy_n, then scatter-add back to image positions.
            GemmSharedA(nb, true, k, p, cout, pw, k, pdy + (long)n0 * cout * p, (long)cout * p, col, (long)k * p, 0f);
            Col2im(geo, col, pdx + (long)n0 * geo.Cin * geo.H * geo.W, nb);
        });
    }

    protected internal override void Conv2dBackwardWeight(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g)
    {
        var geo = g;
        int p = g.Ho * g.Wo, k = g.PatchSize, cout = g.Cout, planeIn = g.Cin * g.H * g.W;
        LaunchLog.CountFlops(2.0 * g.N * cout * p * k);
        float* px = Ptr(x), pdy = Ptr(dy), pdw = Ptr(dweight);
        // Samples are split across the cores; each worker accumulates dW_w += dy_n · B_nᵀ, where B_n [K, P] is x_n
        // itself (1×1) or the windows of x_n's gathered planes (the forward's implicit GEMM, read with dy_n widened
        // to the planes' Wph columns, zeros in the extra ones); then the partial sums are added. From 16 output
        // channels the product runs transposed (WeightGradientOuter).
        var plan = ForwardPlan(geo);
        int positions = geo.IsPointwise ? p : plan.Positions;
        long work = 2L * g.N * cout * p * k;
        int workers = (int)Math.Clamp(Math.Min(Environment.ProcessorCount, work / WeightGradWorkPerWorker), 1, Math.Max(g.N, 1));
        if (cout >= CpuGemm.OuterMinChannels)
        {
            WeightGradientOuter(geo, plan, workers, px, pdy, pdw);
            return;
        }
        // Few output channels: dot products along the rows where they are long, else transposed into scratch first.
        bool rowDots = positions >= CpuGemm.RowDotsMinLength;
        long weights = (long)cout * k, gathered = geo.IsPointwise ? 0 : plan.GatherFloats + (long)cout * positions;
        long perWorker = gathered + (rowDots ? 0 : (long)k * positions);
        float[] scratch = ArrayPool<float>.Shared.Rent(checked((int)((workers - 1) * weights + workers * perWorker + 1)));
        int[] offsetArray = ArrayPool<int>.Shared.Rent(geo.IsPointwise ? 1 : k);
        try
        {
            fixed (float* ps = scratch)
            fixed (int* po = offsetArray)
            {
                if (!geo.IsPointwise) plan.FillOffsets(po);
                nint pScratch = (nint)ps, ppx = (nint)px, ppdy = (nint)pdy, ppdw = (nint)pdw, poff = (nint)po;
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
                {
                    float* acc = w == 0 ? (float*)ppdw : (float*)pScratch + (w - 1) * weights;
                    float* own = (float*)pScratch + (workers - 1) * weights + w * perWorker;
                    float* transposed = own + gathered;
                    new Span<float>(acc, (int)weights).Clear();
                    for (int n = (int)((long)geo.N * w / workers), end = (int)((long)geo.N * (w + 1) / workers); n < end; n++)
                    {
                        float* xn = (float*)ppx + (long)n * planeIn, dyn = (float*)ppdy + (long)n * cout * p;
                        if (geo.IsPointwise)
                        {
                            if (rowDots) CpuGemm.AccumulateRowDots(cout, k, p, dyn, p, xn, p, acc, k);
                            else CpuGemm.AccumulateTransposed(cout, k, p, dyn, p, xn, p, acc, k, transposed);
                            continue;
                        }
                        float* planes = own, wideDy = own + plan.GatherFloats;
                        plan.Gather(xn, planes);
                        WidenRows(dyn, wideDy, cout * geo.Ho, geo.Wo, plan.Wph);
                        var rows = new OffsetRows(planes, (int*)poff);
                        if (rowDots) CpuGemm.AccumulateRowDots(cout, k, positions, wideDy, positions, rows, acc, k);
                        else CpuGemm.AccumulateTransposed(cout, k, positions, wideDy, positions, rows, acc, k, transposed);
                    }
                });
                var sum = new Span<float>(pdw, (int)weights);
                for (int w = 1; w < workers; w++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(ps + (w - 1) * weights, (int)weights), sum);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
            ArrayPool<int>.Shared.Return(offsetArray);
        }
    }

    /// <summary>
    /// The weight gradient for 16 or more output channels, transposed: each worker accumulates
    /// dWᵀ_w [K, Cout] += B_n [K, P] · dy_nᵀ [P, Cout] over its samples (B_n: x_n itself for 1×1, else the windows of
    /// x_n's gathered planes over Wph-wide rows, with dy_nᵀ zero in the extra positions), so the tiled kernels run
    /// full-width FMAs across the output channels; then dW = Σ_w dWᵀ_w, transposed back.
    /// </summary>
    static void WeightGradientOuter(in Conv2dGeometry g, in GatherPlan plan, int workers, float* px, float* pdy, float* pdw)
    {
        var geo = g;
        var gp = plan;
        int p = g.Ho * g.Wo, k = g.PatchSize, cout = g.Cout, planeIn = g.Cin * g.H * g.W;
        bool pointwise = g.IsPointwise;
        int positions = pointwise ? p : plan.Positions, wph = pointwise ? g.Wo : plan.Wph;
        long weights = (long)cout * k;
        long planes = pointwise ? 0 : plan.GatherFloats, pack = pointwise ? 0 : (long)k * CpuGemm.PackChunk;
        long perWorker = weights + planes + (long)positions * cout + pack;
        float[] scratch = ArrayPool<float>.Shared.Rent(checked((int)(workers * perWorker)));
        int[] offsetArray = ArrayPool<int>.Shared.Rent(pointwise ? 1 : k);
        try
        {
            fixed (float* ps = scratch)
            fixed (int* po = offsetArray)
            {
                if (!pointwise) plan.FillOffsets(po);
                nint pScratch = (nint)ps, ppx = (nint)px, ppdy = (nint)pdy, poff = (nint)po;
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
                {
                    float* accT = (float*)pScratch + w * perWorker, own = accT + weights, dyT = own + planes, packed = dyT + (long)positions * cout;
                    new Span<float>(accT, (int)weights).Clear();
                    for (int n = (int)((long)geo.N * w / workers), end = (int)((long)geo.N * (w + 1) / workers); n < end; n++)
                    {
                        float* xn = (float*)ppx + (long)n * planeIn, dyn = (float*)ppdy + (long)n * cout * p;
                        TransposeWidened(dyn, dyT, cout, geo.Ho, geo.Wo, wph);
                        if (pointwise) { CpuGemm.AccumulateOuter(k, cout, p, xn, p, dyT, accT); continue; }
                        gp.Gather(xn, own);
                        CpuGemm.AccumulateOuter(k, cout, positions, new OffsetRows(own, (int*)poff), dyT, accT, packed);
                    }
                });
                // dW [Cout, K] = Σ_w dWᵀ_w [K, Cout]ᵀ
                for (int co = 0; co < cout; co++)
                    for (int q = 0; q < k; q++)
                    {
                        float s = 0f;
                        for (int w = 0; w < workers; w++) s += ps[w * perWorker + (long)q * cout + co];
                        pdw[(long)co * k + q] = s;
                    }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
            ArrayPool<int>.Shared.Return(offsetArray);
        }
    }

    /// <summary>dst [rows·wide, channels] = src [channels, rows, narrow] transposed, with zeros at columns narrow..wide of each row.</summary>
    static void TransposeWidened(float* src, float* dst, int channels, int rows, int narrow, int wide)
    {
        for (int r = 0; r < rows; r++)
        {
            float* to = dst + (long)r * wide * channels;
            for (int c = 0; c < channels; c++)
            {
                float* from = src + ((long)c * rows + r) * narrow;
                for (int j = 0; j < narrow; j++) to[(long)j * channels + c] = from[j];
            }
            new Span<float>(to + (long)narrow * channels, (wide - narrow) * channels).Clear();
        }
    }

    /// <summary>dst [rows, wide] = src [rows, narrow] with zeros in the last wide − narrow columns of each row.</summary>
    static void WidenRows(float* src, float* dst, int rows, int narrow, int wide)
    {
        for (int r = 0; r < rows; r++)
        {
            var to = new Span<float>(dst + (long)r * wide, wide);
            new ReadOnlySpan<float>(src + (long)r * narrow, narrow).CopyTo(to);
            to[narrow..].Clear();
        }
    }

    /// <summary>Below this many FLOPs per worker a weight gradient stays on one thread.</summary>
    const long WeightGradWorkPerWorker = 1L << 20;

    protected internal override void Conv2dBackwardBias(Tensor dy, Tensor dbias, in Conv2dGeometry g)
    {
        int n = g.N, cout = g.Cout, p = g.Ho * g.Wo;
        nint pdy = (nint)Ptr(dy), pdb = (nint)Ptr(dbias);
        ParallelRange(cout, (long)n * p, (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
            {
                float s = 0f;
                for (int i = 0; i < n; i++) s += TensorPrimitives.Sum(new ReadOnlySpan<float>((float*)pdy + ((long)i * cout + c) * p, p));
                ((float*)pdb)[c] = s;
            }
        });
    }

    /// <summary>C_i [m, cols] = op(A) [m, kk] · B_i [kk, cols] + beta·C_i for i in [0, batch), A shared by all i.</summary>
    static void GemmSharedA(int batch, bool transA, int m, int cols, int kk, float* a, int lda,
        float* b, long strideB, float* c, long strideC, float beta) =>
        CpuGemm.SgemmBatched(batch, transA, false, m, cols, kk, a, lda, 0, b, cols, strideB, c, cols, strideC, 1f, beta);

    /// <summary>dx[i] = Σ over (kh, kw) of the col rows scattered back to x[i, ci, oh·s − p + kh, ow·s − p + kw] (overwrites dx).</summary>
    static void Col2im(Conv2dGeometry g, float* col, float* dx, int nb)
    {
        nint pdx = (nint)dx, pcol = (nint)col;
        int kk = g.KH * g.KW, p = g.Ho * g.Wo;
        ParallelRange(nb * g.Cin, (long)kk * p, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                float* plane = (float*)pdx + (long)r * g.H * g.W;
                float* rows = (float*)pcol + (long)r * kk * p;
                new Span<float>(plane, g.H * g.W).Clear();
                for (int kh = 0; kh < g.KH; kh++)
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        float* src = rows + (long)(kh * g.KW + kw) * p;
                        ValidRange(g.Wo, g.W, g.StrideW, kw - g.PadW, out int ow0, out int ow1);
                        if (ow0 >= ow1) continue;
                        for (int oh = 0; oh < g.Ho; oh++)
                        {
                            int ih = oh * g.StrideH - g.PadH + kh;
                            if (ih < 0 || ih >= g.H) continue;
                            float* dst = plane + (long)ih * g.W + (kw - g.PadW);
                            float* srow = src + (long)oh * g.Wo;
                            if (g.StrideW == 1)
                            {
                                var d = new Span<float>(dst + ow0, ow1 - ow0);
                                TensorPrimitives.Add(d, new ReadOnlySpan<float>(srow + ow0, ow1 - ow0), d);
                            }
                            else for (int ow = ow0; ow < ow1; ow++) dst[(long)ow * g.StrideW] += srow[ow];
                        }
                    }
            }
        });
    }

    /// <summary>Output columns [ow0, ow1) whose input column ow·stride + offset lies in [0, size).</summary>
    internal static void ValidRange(int outSize, int size, int stride, int offset, out int ow0, out int ow1)
    {
        // ow·stride + offset ≥ 0  ⇔  ow ≥ ceil(−offset / stride);  ow·stride + offset ≤ size − 1  ⇔  ow ≤ floor((size − 1 − offset) / stride)
        ow0 = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        int last = size - 1 - offset;
        ow1 = last < 0 ? 0 : Math.Min(outSize, last / stride + 1);
        ow0 = Math.Min(ow0, outSize);
        if (ow1 < ow0) ow1 = ow0;
    }
}
