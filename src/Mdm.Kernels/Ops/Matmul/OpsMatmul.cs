namespace Mdm.Kernels;

/// <summary>
/// Matrix products (torch.matmul on 2-D/3-D operands, with transpose flags) and Linear (torch.nn.functional.linear).
/// Operands are both F32 or both BF16 (mixed precision: bf16 storage, f32 accumulation). Forward outputs are F32, or
/// BF16 on request (outDType, or a BF16 output tensor): the f32 result plus bias, rounded once. Gradients are F32.
/// </summary>
public static partial class Ops
{
    // ---- MatMul -------------------------------------------------------------------------------------------------

    /// <summary>
    /// c = op(a)·op(b), op(x) = x or xᵀ (last two axes). a and b are 2-D [m,k] or 3-D [batch,m,k]; a 2-D operand, or a
    /// 3-D one with batch 1, is broadcast over the other's batch (as torch.matmul). The result is 3-D when either input
    /// is, else 2-D. Both inputs F32, or both BF16 (f32 accumulation). c is <paramref name="outDType"/>, else the given
    /// c's type, else F32; BF16 holds the f32 result rounded to nearest even.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false, Tensor? c = null, DType? outDType = null)
    {
        const string op = "MatMul";
        SameBackend(op, a, b, c);
        var p = PlanMatMul(op, a, b, transA, transB);
        c = Output(op, a, c, p.OutShape, GemmOutDType(c, outDType));
        if (c.Numel > 0) a.Backend.Gemm(a, b, c, null, p.Desc);
        return c;
    }

    /// <summary>
    /// Backward of <see cref="MatMul"/>: da = dc·op(b)ᵀ laid out as a is stored (transposed back when transA), summed
    /// over the batch when a was broadcast; db likewise. dc is F32 [the forward output's shape]; with BF16 inputs an F32
    /// dc is rounded to BF16 first (as autocast would hand it) and the gradients are F32.
    /// Outputs may be given (shapes of a and b) or are allocated; skip one with wantA/wantB false.
    /// </summary>
    public static (Tensor? da, Tensor? db) MatMulBackward(Tensor dc, Tensor a, Tensor b, bool transA = false, bool transB = false,
        Tensor? da = null, Tensor? db = null, bool wantA = true, bool wantB = true)
    {
        const string op = "MatMulBackward";
        SameBackend(op, dc, a, b, da, db);
        var p = PlanMatMul(op, a, b, transA, transB);
        if (!Shape.Equal(dc.Dims, p.OutShape))
            throw new ArgumentException($"{op}: gradient has shape {dc.ShapeString}, the product of {a.ShapeString} and {b.ShapeString} is {Shape.Format(p.OutShape)}");
        if (dc.DType != DType.F32 && dc.DType != a.DType)
            throw new ArgumentException($"{op}: gradient {dc.ShapeString} is {dc.DType.Name()}, inputs are {a.DType.Name()}");
        if (wantA) da = Output(op, a, da, a.Dims);
        if (wantB) db = Output(op, a, db, b.Dims);
        if (!wantA && !wantB) return (null, null);

        var g = dc;
        try
        {
            if (a.DType == DType.BF16 && dc.DType == DType.F32) g = ToBF16(dc);
            var d = p.Desc;
            long sC = (long)d.M * d.N;
            // A side broadcast over the batch (2-D, or batch 1) gets the sum of the per-batch gradients.
            bool sumA = (a.Rank == 2 || a.Dim(0) == 1) && d.Batch != 1, sumB = (b.Rank == 2 || b.Dim(0) == 1) && d.Batch != 1;
            if (wantA && da!.Numel > 0)
            {
                // op(A) grad = dC·op(B)ᵀ [M,K]; A stored transposed gets op(B)·dCᵀ [K,M].
                if (!transA) a.Backend.Gemm(g, b, da, null, new MatmulDesc(d.Batch, d.M, d.K, d.N, false, !transB, sC, d.StrideB, sumA ? 0 : d.StrideA, sumA));
                else a.Backend.Gemm(b, g, da, null, new MatmulDesc(d.Batch, d.K, d.M, d.N, transB, true, d.StrideB, sC, sumA ? 0 : d.StrideA, sumA));
            }
            if (wantB && db!.Numel > 0)
            {
                // op(B) grad = op(A)ᵀ·dC [K,N]; B stored transposed gets dCᵀ·op(A) [N,K].
                if (!transB) a.Backend.Gemm(a, g, db, null, new MatmulDesc(d.Batch, d.K, d.N, d.M, !transA, false, d.StrideA, sC, sumB ? 0 : d.StrideB, sumB));
                else a.Backend.Gemm(g, a, db, null, new MatmulDesc(d.Batch, d.N, d.K, d.M, true, transA, sC, d.StrideA, sumB ? 0 : d.StrideB, sumB));
            }
        }
        finally { if (!ReferenceEquals(g, dc)) g.Dispose(); }
        return (wantA ? da : null, wantB ? db : null);
    }

    readonly record struct MatMulPlan(MatmulDesc Desc, int[] OutShape);

    static MatMulPlan PlanMatMul(string op, Tensor a, Tensor b, bool transA, bool transB)
    {
        string Shapes() => $"a {a.ShapeString}{(transA ? "ᵀ" : "")} and b {b.ShapeString}{(transB ? "ᵀ" : "")}";
        if (a.Rank is < 2 or > 3 || b.Rank is < 2 or > 3)
            throw new ArgumentException($"{op}: operands must be 2-D or 3-D, got {Shapes()}");
        RequireGemmDTypes(op, a, b);
        int m = transA ? a.Dim(-1) : a.Dim(-2), ka = transA ? a.Dim(-2) : a.Dim(-1);
        int kb = transB ? b.Dim(-1) : b.Dim(-2), n = transB ? b.Dim(-2) : b.Dim(-1);
        if (ka != kb) throw new ArgumentException($"{op}: inner dimensions disagree ({ka} vs {kb}) for {Shapes()}");
        int batchA = a.Rank == 3 ? a.Dim(0) : 1, batchB = b.Rank == 3 ? b.Dim(0) : 1;
        if (batchA != batchB && batchA != 1 && batchB != 1)
            throw new ArgumentException($"{op}: batch sizes disagree ({batchA} vs {batchB}) for {Shapes()}");
        int batch = Math.Max(batchA, batchB);
        if (batchA == 0 || batchB == 0) batch = 0;
        long outNumel = (long)batch * m * n;
        if (outNumel > Backend.MaxElements)
            throw new ArgumentException($"{op}: the product of {Shapes()} would have {outNumel} elements, more than one tensor may hold");
        var outShape = a.Rank == 3 || b.Rank == 3 ? new[] { batch, m, n } : new[] { m, n };
        var desc = new MatmulDesc(batch, m, n, ka, transA, transB,
            batchA == 1 ? 0 : (long)m * ka, batchB == 1 ? 0 : (long)ka * n, (long)m * n, false);
        return new MatMulPlan(desc, outShape);
    }

    /// <summary>A GEMM's output type: the one asked for, else the given output's, else F32.</summary>
    static DType GemmOutDType(Tensor? output, DType? asked) => asked ?? output?.DType ?? DType.F32;

    static void RequireGemmDTypes(string op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType || (a.DType != DType.F32 && a.DType != DType.BF16))
            throw new ArgumentException($"{op}: operands must be both F32 or both BF16, got {a.DType.Name()} {a.ShapeString} and {b.DType.Name()} {b.ShapeString}");
    }

    // ---- Linear -------------------------------------------------------------------------------------------------

    /// <summary>
    /// y = x·wᵀ + bias (torch.nn.functional.linear): x [..., in] (rank ≥ 1), w [out, in], bias [out] or null → y [..., out].
    /// x and w both F32, or both BF16 (f32 accumulation); bias is F32. y is <paramref name="outDType"/>, else the given
    /// y's type, else F32; BF16 holds the f32 sum (bias included) rounded to nearest even.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? bias = null, Tensor? y = null, DType? outDType = null)
    {
        const string op = "Linear";
        SameBackend(op, x, w, bias, y);
        var (rows, outF, inF) = PlanLinear(op, x, w, bias);
        var outShape = x.Shape;
        outShape[^1] = outF;
        y = Output(op, x, y, outShape, GemmOutDType(y, outDType));
        if (y.Numel > 0) x.Backend.Gemm(x, w, y, bias, new MatmulDesc(1, rows, outF, inF, false, true, 0, 0, 0, false));
        return y;
    }

    /// <summary>
    /// Backward of <see cref="Linear"/>: dx = dy·w, dw = dyᵀ·x over all leading rows, dbias = Σ dy over those rows.
    /// dy is F32 (or BF16 with BF16 inputs); with BF16 inputs an F32 dy is rounded to BF16 for the two products (as
    /// autocast hands it), while dbias sums dy as given. All gradients are F32. Skip one with its want flag.
    /// </summary>
    public static (Tensor? dx, Tensor? dw, Tensor? dbias) LinearBackward(Tensor dy, Tensor x, Tensor w,
        Tensor? dx = null, Tensor? dw = null, Tensor? dbias = null, bool wantX = true, bool wantW = true, bool wantBias = true)
    {
        const string op = "LinearBackward";
        SameBackend(op, dy, x, w, dx, dw, dbias);
        var (rows, outF, inF) = PlanLinear(op, x, w, null);
        var yShape = x.Shape;
        yShape[^1] = outF;
        if (!Shape.Equal(dy.Dims, yShape))
            throw new ArgumentException($"{op}: gradient has shape {dy.ShapeString}, Linear of x {x.ShapeString} by w {w.ShapeString} gives {Shape.Format(yShape)}");
        if (dy.DType != DType.F32 && dy.DType != x.DType)
            throw new ArgumentException($"{op}: gradient {dy.ShapeString} is {dy.DType.Name()}, inputs are {x.DType.Name()}");
        if (wantX) dx = Output(op, x, dx, x.Dims);
        if (wantW) dw = Output(op, x, dw, w.Dims);
        if (wantBias) dbias = Output(op, x, dbias, [outF]);

        Tensor? g = null, g32 = null;
        try
        {
            if (wantX || wantW)
            {
                g = x.DType == DType.BF16 && dy.DType == DType.F32 ? ToBF16(dy) : dy;
                if (wantX && dx!.Numel > 0) x.Backend.Gemm(g, w, dx, null, new MatmulDesc(1, rows, inF, outF, false, false, 0, 0, 0, false));
                if (wantW && dw!.Numel > 0) x.Backend.Gemm(g, x, dw, null, new MatmulDesc(1, outF, inF, rows, true, false, 0, 0, 0, false));
            }
            if (wantBias)
            {
                g32 = dy.DType == DType.F32 ? dy : ToF32(dy);
                using var view = g32.Reshape(rows, outF);
                Sum(view, [0], keepDims: false, dbias);
            }
        }
        finally
        {
            if (g is not null && !ReferenceEquals(g, dy)) g.Dispose();
            if (g32 is not null && !ReferenceEquals(g32, dy)) g32.Dispose();
        }
        return (wantX ? dx : null, wantW ? dw : null, wantBias ? dbias : null);
    }

    static (int rows, int outF, int inF) PlanLinear(string op, Tensor x, Tensor w, Tensor? bias)
    {
        string Shapes() => $"x {x.ShapeString}, w {w.ShapeString}" + (bias is null ? "" : $", bias {bias.ShapeString}");
        if (x.Rank < 1) throw new ArgumentException($"{op}: x must have at least one axis, got {Shapes()}");
        if (w.Rank != 2) throw new ArgumentException($"{op}: w must be 2-D [out, in], got {Shapes()}");
        RequireGemmDTypes(op, x, w);
        int outF = w.Dim(0), inF = w.Dim(1);
        if (x.Dim(-1) != inF) throw new ArgumentException($"{op}: x has {x.Dim(-1)} input features, w expects {inF}: {Shapes()}");
        if (bias is not null)
        {
            if (bias.DType != DType.F32) throw new ArgumentException($"{op}: bias must be F32, got {bias.DType.Name()}: {Shapes()}");
            if (bias.Rank != 1 || bias.Dim(0) != outF) throw new ArgumentException($"{op}: bias must be [{outF}], got {Shapes()}");
        }
        long rows = inF == 0 ? Shape.Numel(x.Dims[..^1]) : x.Numel / inF;
        if (rows * outF > Backend.MaxElements)
            throw new ArgumentException($"{op}: the output would have {rows * outF} elements, more than one tensor may hold: {Shapes()}");
        return ((int)rows, outF, inF);
    }
}
