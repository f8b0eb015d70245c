using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// Direct convolution kernels (PyTorch conv2d semantics; conv1d runs as H = 1). Simple and correct, not tuned:
/// forward is one thread per output element, grad-input one thread per input element gathering over the kernel
/// window and output channels (no atomics), grad-weight one group per weight element reducing over N·Ho·Wo, and
/// grad-bias one group per output channel. All are explicitly grouped with grid-stride loops.
/// </summary>
public static class ConvKernels
{
    public const int MaxGroupSize = 256;

    /// <summary>y[n, co, oh, ow] = bias[co] + Σ_{ci, kh, kw} x[n, ci, oh·sh − ph + kh, ow·sw − pw + kw] · w[co, ci, kh, kw]
    /// (+ residual[n, co, oh, ow] when <paramref name="hasResidual"/> is 1: the ResNet skip added in the epilogue).</summary>
    [Kernel("Conv2dForward")]
    public static void Forward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, int hasBias, ArrayView<float> residual, int hasResidual,
        ArrayView<float> y, Conv2dGeometry g)
    {
        int stride = Grid.DimX * Group.DimX;
        int total = y.IntLength;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int ow = i % g.Wo, t = i / g.Wo;
            int oh = t % g.Ho; t /= g.Ho;
            int co = t % g.Cout, n = t / g.Cout;
            int ih0 = oh * g.StrideH - g.PadH, iw0 = ow * g.StrideW - g.PadW;
            float acc = hasBias != 0 ? bias[co] : 0f;
            for (int ci = 0; ci < g.Cin; ci++)
            {
                int xPlane = (n * g.Cin + ci) * g.H, wPlane = (co * g.Cin + ci) * g.KH;
                for (int kh = 0; kh < g.KH; kh++)
                {
                    int ih = ih0 + kh;
                    if (ih < 0 || ih >= g.H) continue;
                    int xRow = (xPlane + ih) * g.W, wRow = (wPlane + kh) * g.KW;
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        int iw = iw0 + kw;
                        if (iw >= 0 && iw < g.W) acc += x[xRow + iw] * w[wRow + kw];
                    }
                }
            }
            y[i] = hasResidual != 0 ? acc + residual[i] : acc;
        }
    }

    /// <summary>
    /// dx[n, ci, ih, iw] = Σ dy[n, co, oh, ow] · w[co, ci, kh, kw] over all (co, kh, kw) with ih = oh·sh − ph + kh and
    /// iw = ow·sw − pw + kw for some in-range (oh, ow): a gather, one thread per input element.
    /// </summary>
    [Kernel("Conv2dBackwardInput")]
    public static void BackwardInput(ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, Conv2dGeometry g)
    {
        int stride = Grid.DimX * Group.DimX;
        int total = dx.IntLength;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int iw = i % g.W, t = i / g.W;
            int ih = t % g.H; t /= g.H;
            int ci = t % g.Cin, n = t / g.Cin;
            float acc = 0f;
            for (int co = 0; co < g.Cout; co++)
            {
                int dyPlane = (n * g.Cout + co) * g.Ho, wPlane = (co * g.Cin + ci) * g.KH;
                for (int kh = 0; kh < g.KH; kh++)
                {
                    int th = ih + g.PadH - kh;          // = oh·sh
                    if (th < 0) continue;
                    int oh = th / g.StrideH;
                    if (oh * g.StrideH != th || oh >= g.Ho) continue;
                    int dyRow = (dyPlane + oh) * g.Wo, wRow = (wPlane + kh) * g.KW;
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        int tw = iw + g.PadW - kw;      // = ow·sw
                        if (tw < 0) continue;
                        int ow = tw / g.StrideW;
                        if (ow * g.StrideW == tw && ow < g.Wo) acc += dy[dyRow + ow] * w[wRow + kw];
                    }
                }
            }
            dx[i] = acc;
        }
    }

    /// <summary>
    /// dw[co, ci, kh, kw] = Σ_{n, oh, ow} dy[n, co, oh, ow] · x[n, ci, oh·sh − ph + kh, ow·sw − pw + kw]:
    /// one group per weight element (grid-stride over them), per-thread strided partials, then a shared-memory tree.
    /// </summary>
    [Kernel("Conv2dBackwardWeight")]
    public static void BackwardWeight(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, Conv2dGeometry g)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        int total = dw.IntLength, p = g.Ho * g.Wo, count = g.N * p;
        for (int e = Grid.IdxX; e < total; e += Grid.DimX)
        {
            int kw = e % g.KW, t = e / g.KW;
            int kh = t % g.KH; t /= g.KH;
            int ci = t % g.Cin, co = t / g.Cin;
            float acc = 0f;
            for (int j = tid; j < count; j += threads)
            {
                int n = j / p, pp = j - n * p;
                int oh = pp / g.Wo, ow = pp - oh * g.Wo;
                int ih = oh * g.StrideH - g.PadH + kh, iw = ow * g.StrideW - g.PadW + kw;
                if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                    acc += dy[(n * g.Cout + co) * p + pp] * x[((n * g.Cin + ci) * g.H + ih) * g.W + iw];
            }
            partial[tid] = acc;
            Group.Barrier();
            for (int s = threads / 2; s > 0; s /= 2)
            {
                if (tid < s) partial[tid] += partial[tid + s];
                Group.Barrier();
            }
            if (tid == 0) dw[e] = partial[0];
            Group.Barrier();   // partial[0] is read before the next element overwrites it
        }
    }

    /// <summary>dbias[co] = Σ_{n, oh, ow} dy[n, co, oh, ow]: one group per output channel, shared-memory tree.</summary>
    [Kernel("Conv2dBackwardBias")]
    public static void BackwardBias(ArrayView<float> dy, ArrayView<float> dbias, int n, int cout, int p)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        int count = n * p;
        for (int co = Grid.IdxX; co < cout; co += Grid.DimX)
        {
            float acc = 0f;
            for (int j = tid; j < count; j += threads)
            {
                int s = j / p, pp = j - s * p;
                acc += dy[(s * cout + co) * p + pp];
            }
            partial[tid] = acc;
            Group.Barrier();
            for (int s = threads / 2; s > 0; s /= 2)
            {
                if (tid < s) partial[tid] += partial[tid + s];
                Group.Barrier();
            }
            if (tid == 0) dbias[co] = partial[0];
            Group.Barrier();
        }
    }

    /// <summary>
    /// im2col in bf16 for the tensor-core convolution: cols[b][k][p] = x[n0 + b][ci][oy·s − pad + ky][ox·s − pad + kx]
    /// (0 outside the image) with k = (ci·KH + ky)·KW + kx, p = oy·Wo + ox, for <paramref name="count"/> samples from
    /// <paramref name="n0"/>. One group per column-matrix row (grid-stride), so (ci, ky, kx) is worked out once per row;
    /// each thread writes two neighbouring columns as one 32-bit store (Ho·Wo is even: the host requires a multiple of 8).
    /// </summary>
    [Kernel("Im2ColBF16")]
    public static void Im2ColBF16(ArrayView<ushort> x, ArrayView<uint> cols, Conv2dGeometry g, int n0, int count)
    {
        int khw = g.KH * g.KW, k = g.Cin * khw, pairs = g.Ho * g.Wo / 2, hw = g.H * g.W;
        int rows = count * k;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int b = row / k, kk = row - b * k;
            int ci = kk / khw, r = kk - ci * khw, ky = r / g.KW, kx = r - ky * g.KW;
            int src = ((n0 + b) * g.Cin + ci) * hw, dst = row * pairs;
            for (int j = Group.IdxX; j < pairs; j += Group.DimX)
            {
                int col = 2 * j, oy = col / g.Wo, ox = col - oy * g.Wo;
                uint lo = Tap(x, g, src, oy, ox, ky, kx);
                if (++ox == g.Wo) { ox = 0; oy++; }
                uint hi = Tap(x, g, src, oy, ox, ky, kx);
                cols[dst + j] = lo | (hi << 16);
            }
        }
    }

    /// <summary>x at output position (oy, ox) for tap (ky, kx) of one input plane, or 0 in the padding.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static uint Tap(ArrayView<ushort> x, Conv2dGeometry g, int plane, int oy, int ox, int ky, int kx)
    {
        int iy = oy * g.StrideH - g.PadH + ky, ix = ox * g.StrideW - g.PadW + kx;
        return iy >= 0 && iy < g.H && ix >= 0 && ix < g.W ? x[plane + iy * g.W + ix] : 0u;
    }

    /// <summary>
    /// col2im for the tensor-core input gradient, gather form (no atomics): dx[n0 + b][ci][iy][ix] = Σ over taps (ky, kx)
    /// whose output position oy = (iy + pad − ky) / stride (exact, in range), likewise ox, of cols[b][(ci·KH + ky)·KW + kx][oy·Wo + ox].
    /// </summary>
    [Kernel("Col2Im")]
    public static void Col2Im(ArrayView<float> cols, ArrayView<float> dx, Conv2dGeometry g, int n0, int count)
    {
        int khw = g.KH * g.KW, k = g.Cin * khw, p = g.Ho * g.Wo, hw = g.H * g.W;
        int total = count * g.Cin * hw, stride = Grid.DimX * Group.DimX;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int pix = e % hw, plane = e / hw, ci = plane % g.Cin, b = plane / g.Cin;
            int iy = pix / g.W, ix = pix - iy * g.W;
            float acc = 0f;
            if (g.StrideH == 1 && g.StrideW == 1)   // the common case: no divisibility tests, no divisions
            {
                for (int ky = 0; ky < g.KH; ky++)
                {
                    int oy = iy + g.PadH - ky;
                    if (oy < 0 || oy >= g.Ho) continue;
                    for (int kx = 0; kx < g.KW; kx++)
                    {
                        int ox = ix + g.PadW - kx;
                        if (ox >= 0 && ox < g.Wo) acc += cols[(b * k + (ci * g.KH + ky) * g.KW + kx) * p + oy * g.Wo + ox];
                    }
                }
                dx[(n0 + b) * g.Cin * hw + ci * hw + pix] = acc;
                continue;
            }
            for (int ky = 0; ky < g.KH; ky++)
            {
                int ty = iy + g.PadH - ky;
                if (ty < 0 || ty % g.StrideH != 0) continue;
                int oy = ty / g.StrideH;
                if (oy >= g.Ho) continue;
                for (int kx = 0; kx < g.KW; kx++)
                {
                    int tx = ix + g.PadW - kx;
                    if (tx < 0 || tx % g.StrideW != 0) continue;
                    int ox = tx / g.StrideW;
                    if (ox >= g.Wo) continue;
                    acc += cols[(b * k + (ci * g.KH + ky) * g.KW + kx) * p + oy * g.Wo + ox];
                }
            }
            dx[(n0 + b) * g.Cin * hw + ci * hw + pix] = acc;
        }
    }
}
