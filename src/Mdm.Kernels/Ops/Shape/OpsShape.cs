namespace Mdm.Kernels;

// Shape family: GELU, FiLM scale-shift, nearest ×2 upsample, average pooling, concat / split, permute (F32; concat,
// split and permute also move BF16 values as they are, for autocast's bf16 storage).
public static partial class Ops
{
    // ---- GELU (exact erf form) --------------------------------------------------------------------------------
    /// <summary>GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)) (torch.nn.functional.gelu, approximate='none'). y has x's type:
    /// a BF16 x (autocast's bf16 storage) is widened, GELU is computed in f32 and y is rounded once to BF16, as torch's
    /// GELU on a bf16 tensor.</summary>
    public static Tensor Gelu(Tensor x, Tensor? y = null)
    {
        SameBackend("Gelu", x, y); RequireF32OrBF16("Gelu", x);
        y = Output("Gelu", x, y, x.Dims, x.DType);
        if (x.Numel > 0) x.Backend.GeluForward(x, y);
        return y;
    }

    /// <summary>dx = dy·(Φ(x) + x·φ(x)); x F32 or BF16 (what the forward read), dy and dx F32.</summary>
    public static Tensor GeluBackward(Tensor x, Tensor dy, Tensor? dx = null)
    {
        SameBackend("GeluBackward", x, dy, dx); RequireF32OrBF16("GeluBackward", x); RequireF32("GeluBackward", dy); SameShape("GeluBackward", x, dy);
        dx = Output("GeluBackward", x, dx, x.Dims);
        if (x.Numel > 0) x.Backend.GeluBackward(x, dy, dx);
        return dx;
    }

    // ---- FiLM scale-shift -------------------------------------------------------------------------------------
    /// <summary>y = x·(1 + a) + b with x [N, C, *spatial] and a, b [N, C] (broadcast over the spatial axes).</summary>
    public static Tensor ScaleShift(Tensor x, Tensor a, Tensor b, Tensor? y = null)
    {
        const string op = "ScaleShift";
        SameBackend(op, x, a, b, y); RequireF32(op, x, a, b);
        var (rows, inner) = CheckScaleShift(op, x, a);
        if (!Shape.Equal(b.Dims, a.Dims))
            throw new ArgumentException($"{op}: shift b has shape {b.ShapeString}, expected {a.ShapeString} (x {x.ShapeString})");
        y = Output(op, x, y, x.Dims);
        if (x.Numel > 0) x.Backend.ScaleShiftForward(x, a, b, y, rows, inner);
        return y;
    }

    /// <summary>Backward of <see cref="ScaleShift"/>: dx = dy·(1 + a), da = Σ_spatial dy·x, db = Σ_spatial dy.</summary>
    public static (Tensor dx, Tensor da, Tensor db) ScaleShiftBackward(Tensor x, Tensor a, Tensor dy,
        Tensor? dx = null, Tensor? da = null, Tensor? db = null)
    {
        const string op = "ScaleShiftBackward";
        SameBackend(op, x, a, dy, dx, da, db); RequireF32(op, x, a, dy);
        var (rows, inner) = CheckScaleShift(op, x, a);
        SameShape(op, x, dy);
        dx = Output(op, x, dx, x.Dims);
        da = Output(op, x, da, a.Dims);
        db = Output(op, x, db, a.Dims);
        if (x.Numel > 0) x.Backend.ScaleShiftBackward(x, a, dy, dx, da, db, rows, inner);
        else if (da.Numel > 0) { x.Backend.Fill(da, 0f); x.Backend.Fill(db, 0f); }
        return (dx, da, db);
    }

    static (int rows, int inner) CheckScaleShift(string op, Tensor x, Tensor a)
    {
        if (x.Rank < 2)
            throw new ArgumentException($"{op}: x must be [N, C, *spatial], got {x.ShapeString}");
        if (a.Rank != 2 || a.Dim(0) != x.Dim(0) || a.Dim(1) != x.Dim(1))
            throw new ArgumentException($"{op}: scale a has shape {a.ShapeString}, expected [{x.Dim(0)},{x.Dim(1)}] for x {x.ShapeString}");
        int rows = x.Dim(0) * x.Dim(1);
        int inner = rows == 0 ? 0 : (int)(x.Numel / rows);
        return (rows, inner);
    }

    // ---- nearest ×2 upsample ----------------------------------------------------------------------------------
    /// <summary>F.interpolate(x, scale_factor=2, mode='nearest') for NCHW x: y[n,c,i,j] = x[n,c,i/2,j/2].</summary>
    public static Tensor UpsampleNearest2x(Tensor x, Tensor? y = null)
    {
        const string op = "UpsampleNearest2x";
        SameBackend(op, x, y); RequireF32(op, x);
        RequireNchw(op, x);
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        if (2L * h * 2L * w * n * c > Backend.MaxElements)
            throw new ArgumentException($"{op}: output for {x.ShapeString} would exceed {Backend.MaxElements} elements");
        y = Output(op, x, y, [n, c, 2 * h, 2 * w]);
        if (y.Numel > 0) x.Backend.UpsampleNearest2x(x, y, n * c, h, w);
        return y;
    }

    /// <summary>Backward of <see cref="UpsampleNearest2x"/>: dx[n,c,i,j] = sum of dy over the 2×2 block it was copied to.</summary>
    public static Tensor UpsampleNearest2xBackward(Tensor dy, Tensor? dx = null)
    {
        const string op = "UpsampleNearest2xBackward";
        SameBackend(op, dy, dx); RequireF32(op, dy);
        RequireNchw(op, dy);
        int n = dy.Dim(0), c = dy.Dim(1), h2 = dy.Dim(2), w2 = dy.Dim(3);
        if (h2 % 2 != 0 || w2 % 2 != 0)
            throw new ArgumentException($"{op}: gradient {dy.ShapeString} has odd height or width; an ×2 upsample output has even sizes");
        dx = Output(op, dy, dx, [n, c, h2 / 2, w2 / 2]);
        if (dx.Numel > 0) dy.Backend.UpsampleNearest2xBackward(dy, dx, n * c, h2 / 2, w2 / 2);
        return dx;
    }

    // ---- average pooling, kernel = stride = s -----------------------------------------------------------------
    /// <summary>F.avg_pool2d(x, s) for NCHW x with H and W divisible by s: the mean of each s×s block.</summary>
    public static Tensor AvgPool2d(Tensor x, int s, Tensor? y = null)
    {
        const string op = "AvgPool2d";
        SameBackend(op, x, y); RequireF32(op, x);
        RequireNchw(op, x);
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        if (s < 1) throw new ArgumentException($"{op}: pool size must be >= 1, got {s} for x {x.ShapeString}");
        if (h % s != 0 || w % s != 0)
            throw new ArgumentException($"{op}: height and width of {x.ShapeString} must be divisible by the pool size {s}");
        y = Output(op, x, y, [n, c, h / s, w / s]);
        if (y.Numel > 0) x.Backend.AvgPool2d(x, y, n * c, h / s, w / s, s);
        return y;
    }

    /// <summary>Backward of <see cref="AvgPool2d"/>: dx[n,c,i,j] = dy[n,c,i/s,j/s] / s².</summary>
    public static Tensor AvgPool2dBackward(Tensor dy, int s, Tensor? dx = null)
    {
        const string op = "AvgPool2dBackward";
        SameBackend(op, dy, dx); RequireF32(op, dy);
        RequireNchw(op, dy);
        if (s < 1) throw new ArgumentException($"{op}: pool size must be >= 1, got {s} for dy {dy.ShapeString}");
        int n = dy.Dim(0), c = dy.Dim(1), oh = dy.Dim(2), ow = dy.Dim(3);
        if ((long)oh * s * ow * s * n * c > Backend.MaxElements)
            throw new ArgumentException($"{op}: input gradient for {dy.ShapeString} with pool size {s} would exceed {Backend.MaxElements} elements");
        dx = Output(op, dy, dx, [n, c, oh * s, ow * s]);
        if (dx.Numel > 0) dy.Backend.AvgPool2dBackward(dy, dx, n * c, oh, ow, s);
        return dx;
    }

    static void RequireNchw(string op, Tensor x)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: expected an NCHW tensor (rank 4), got {x.ShapeString}");
    }

    // ---- concat / split ---------------------------------------------------------------------------------------
    /// <summary>
    /// torch.cat(xs, axis): all tensors have the same rank and agree off the axis. Viewing each input as
    /// [outer, size_k·inner], the output is [outer, Σ size_k·inner] and input k is a block copy at column offset
    /// Σ_{j&lt;k} size_j·inner. Negative axes count from the end. All F32 or all BF16 (y of the same dtype).
    /// </summary>
    public static Tensor Concat(IReadOnlyList<Tensor> xs, int axis, Tensor? y = null)
    {
        const string op = "Concat";
        if (xs is null || xs.Count == 0) throw new ArgumentException($"{op}: needs at least one tensor");
        var first = xs[0];
        SameBackend(op, first, [.. xs, y]); RequireCopyable(op, [.. xs]);
        int rank = first.Rank;
        string shapes = string.Join(" ", xs.Select(t => t.ShapeString));
        if (rank == 0) throw new ArgumentException($"{op}: cannot concatenate scalars ({shapes})");
        int ax = axis < 0 ? axis + rank : axis;
        if (ax < 0 || ax >= rank) throw new ArgumentException($"{op}: axis {axis} out of range for shapes {shapes}");
        long total = 0;
        foreach (var t in xs)
        {
            if (t.Rank != rank) throw new ArgumentException($"{op}: ranks differ ({shapes})");
            for (int d = 0; d < rank; d++)
                if (d != ax && t.Dim(d) != first.Dim(d))
                    throw new ArgumentException($"{op}: shapes {shapes} differ on axis {d}, which is not the concat axis {ax}");
            total += t.Dim(ax);
        }
        var outShape = first.Shape;
        if (total > int.MaxValue) throw new ArgumentException($"{op}: concatenated axis too long for {shapes}");
        outShape[ax] = (int)total;
        if (Shape.Numel(outShape) > Backend.MaxElements) throw new ArgumentException($"{op}: output of {shapes} would exceed {Backend.MaxElements} elements");
        y = Output(op, first, y, outShape, first.DType);
        if (y.Numel == 0) return y;
        int outer = Prod(outShape, 0, ax), inner = Prod(outShape, ax + 1, rank);
        int dstStride = (int)total * inner, offset = 0;
        foreach (var t in xs)
        {
            int chunk = t.Dim(ax) * inner;
            if (chunk > 0) first.Backend.CopyBlocks(t, chunk, 0, y, dstStride, offset, outer, chunk);
            offset += chunk;
        }
        return y;
    }

    /// <summary>
    /// torch.split(x, sizes, axis): pieces of the given sizes along the axis (they must sum to its length), of x's dtype
    /// (F32 or BF16); the backward of <see cref="Concat"/>. Outputs may be supplied (one per size, each of the piece's shape).
    /// </summary>
    public static Tensor[] Split(Tensor x, int[] sizes, int axis, Tensor[]? outputs = null)
    {
        const string op = "Split";
        SameBackend(op, x, outputs ?? []); RequireCopyable(op, x);
        int rank = x.Rank;
        string sz = "[" + string.Join(",", sizes) + "]";
        if (rank == 0) throw new ArgumentException($"{op}: cannot split a scalar tensor {x.ShapeString}");
        int ax = axis < 0 ? axis + rank : axis;
        if (ax < 0 || ax >= rank) throw new ArgumentException($"{op}: axis {axis} out of range for shape {x.ShapeString}");
        if (sizes.Length == 0) throw new ArgumentException($"{op}: no sizes given for {x.ShapeString} axis {ax}");
        long sum = 0;
        foreach (int s in sizes)
        {
            if (s < 0) throw new ArgumentException($"{op}: negative size in {sz} for {x.ShapeString}");
            sum += s;
        }
        if (sum != x.Dim(ax))
            throw new ArgumentException($"{op}: sizes {sz} sum to {sum}, but axis {ax} of {x.ShapeString} has length {x.Dim(ax)}");
        if (outputs is not null && outputs.Length != sizes.Length)
            throw new ArgumentException($"{op}: {outputs.Length} outputs given for {sizes.Length} sizes {sz} of {x.ShapeString}");
        int outer = Prod(x.Shape, 0, ax), inner = Prod(x.Shape, ax + 1, rank);
        int srcStride = x.Dim(ax) * inner, offset = 0;
        var result = new Tensor[sizes.Length];
        try
        {
            for (int k = 0; k < sizes.Length; k++)
            {
                var shape = x.Shape;
                shape[ax] = sizes[k];
                result[k] = Output(op, x, outputs?[k], shape, x.DType);
                int chunk = sizes[k] * inner;
                if (chunk > 0 && outer > 0) x.Backend.CopyBlocks(x, srcStride, offset, result[k], chunk, 0, outer, chunk);
                offset += chunk;
            }
        }
        catch
        {
            if (outputs is null) foreach (var t in result) t?.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>torch.narrow(x, axis, start, length) as a new contiguous tensor of x's dtype: one block copy of the slice
    /// (the forward of autograd's narrow, which used to split x into three pieces and keep one).</summary>
    public static Tensor Narrow(Tensor x, int axis, int start, int length, Tensor? y = null)
    {
        const string op = "Narrow";
        SameBackend(op, x, y); RequireCopyable(op, x);
        int ax = NarrowAxis(op, x.Shape, axis, start, length);
        var shape = x.Shape;
        shape[ax] = length;
        y = Output(op, x, y, shape, x.DType);
        int outer = Prod(x.Shape, 0, ax), inner = Prod(x.Shape, ax + 1, x.Rank), chunk = length * inner;
        if (chunk > 0 && outer > 0) x.Backend.CopyBlocks(x, x.Dim(ax) * inner, start * inner, y, chunk, 0, outer, chunk);
        return y;
    }

    /// <summary>
    /// The gradient of <see cref="Narrow"/>: dx [inputShape] is dy inside [start, start + length) along the axis and zero
    /// elsewhere, written in one fill and one block copy (no zero tensors and concatenation). F32.
    /// </summary>
    public static Tensor NarrowBackward(Tensor dy, int[] inputShape, int axis, int start, Tensor? dx = null)
    {
        const string op = "NarrowBackward";
        SameBackend(op, dy, dx); RequireF32(op, dy);
        int rank = inputShape.Length, along = axis < 0 ? axis + rank : axis;
        if (dy.Rank != rank || along < 0 || along >= rank)
            throw new ArgumentException($"{op}: gradient {dy.ShapeString} and input {Shape.Format(inputShape)} with axis {axis}");
        int length = dy.Dim(along);
        int ax = NarrowAxis(op, inputShape, axis, start, length);
        for (int d = 0; d < rank; d++)
            if (d != ax && dy.Dim(d) != inputShape[d])
                throw new ArgumentException($"{op}: gradient {dy.ShapeString} does not match input {Shape.Format(inputShape)} off axis {ax}");
        dx = Output(op, dy, dx, inputShape);
        if (dx.Numel == 0) return dx;
        dx.Backend.Fill(dx, 0f);
        int outer = Prod(inputShape, 0, ax), inner = Prod(inputShape, ax + 1, inputShape.Length), chunk = length * inner;
        if (chunk > 0) dy.Backend.CopyBlocks(dy, chunk, 0, dx, inputShape[ax] * inner, start * inner, outer, chunk);
        return dx;
    }

    /// <summary>The non-negative axis of a narrow of <paramref name="shape"/>, after checking that the slice lies inside it.</summary>
    static int NarrowAxis(string op, int[] shape, int axis, int start, int length)
    {
        int ax = axis < 0 ? axis + shape.Length : axis;
        if (ax < 0 || ax >= shape.Length) throw new ArgumentException($"{op}: axis {axis} out of range for shape {Shape.Format(shape)}");
        if (start < 0 || length < 0 || (long)start + length > shape[ax])
            throw new ArgumentException($"{op}: [{start}, {(long)start + length}) along axis {ax} is outside {Shape.Format(shape)}");
        return ax;
    }

    // ---- permute ----------------------------------------------------------------------------------------------
    /// <summary>x.permute(dims) made contiguous: y.shape[k] = x.shape[dims[k]] (rank ≤ 6; negative dims count from the end);
    /// y has x's dtype (F32 or BF16).</summary>
    public static Tensor Permute(Tensor x, int[] dims, Tensor? y = null)
    {
        const string op = "Permute";
        SameBackend(op, x, y); RequireCopyable(op, x);
        var p = NormalizePermutation(op, x.Shape, dims);
        var outShape = new int[p.Length];
        for (int k = 0; k < p.Length; k++) outShape[k] = x.Dim(p[k]);
        y = Output(op, x, y, outShape, x.DType);
        if (x.Numel > 0) x.Backend.Permute(x, y, PermutePlan.Create(x.Dims, p));
        return y;
    }

    /// <summary>Backward of <see cref="Permute"/>: dx = dy permuted by the inverse permutation.</summary>
    public static Tensor PermuteBackward(Tensor dy, int[] dims, Tensor? dx = null)
    {
        const string op = "PermuteBackward";
        SameBackend(op, dy, dx); RequireF32(op, dy);
        var p = NormalizePermutation(op, dy.Shape, dims);
        var inv = new int[p.Length];
        for (int k = 0; k < p.Length; k++) inv[p[k]] = k;
        var inShape = new int[p.Length];
        for (int k = 0; k < p.Length; k++) inShape[k] = dy.Dim(inv[k]);
        dx = Output(op, dy, dx, inShape);
        if (dy.Numel > 0) dy.Backend.Permute(dy, dx, PermutePlan.Create(dy.Dims, inv));
        return dx;
    }

    /// <summary>F32 or BF16 tensors, all of one dtype: what the copying ops move as they are.</summary>
    static void RequireCopyable(string op, params Tensor[] tensors)
    {
        RequireF32OrBF16(op, tensors);
        foreach (var t in tensors)
            if (t.DType != tensors[0].DType)
                throw new ArgumentException($"{op}: tensors of different dtypes ({tensors[0].DType.Name()} {tensors[0].ShapeString} and {t.DType.Name()} {t.ShapeString})");
    }

    static int[] NormalizePermutation(string op, int[] shape, int[] dims)
    {
        int rank = shape.Length;
        string what = $"permutation [{string.Join(",", dims)}] for shape {Shape.Format(shape)}";
        if (rank > PermutePlan.MaxRank) throw new ArgumentException($"{op}: rank {rank} > {PermutePlan.MaxRank} is not supported ({what})");
        if (dims.Length != rank) throw new ArgumentException($"{op}: {what} has {dims.Length} entries, expected {rank}");
        var p = new int[rank];
        var seen = new bool[rank];
        for (int k = 0; k < rank; k++)
        {
            int d = dims[k] < 0 ? dims[k] + rank : dims[k];
            if (d < 0 || d >= rank) throw new ArgumentException($"{op}: {what}: axis {dims[k]} out of range");
            if (seen[d]) throw new ArgumentException($"{op}: {what}: axis {dims[k]} repeated");
            seen[d] = true;
            p[k] = d;
        }
        return p;
    }
}
