namespace Mdm.Kernels;

/// <summary>
/// Convolutions with PyTorch semantics (torch.nn.functional.conv2d / conv1d: cross-correlation, zero padding, no
/// dilation, groups = 1) and their gradients (torch.nn.grad.conv2d_input / conv2d_weight, and the bias gradient).
/// Output size per axis: floor((size + 2·padding − kernel) / stride) + 1.
/// </summary>
public static partial class Ops
{
    // ---- conv2d -----------------------------------------------------------------------------------------------

    /// <summary>y = conv2d(x, weight, bias, stride, padding): x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or null.
    /// y is <paramref name="outDType"/>, else the given y's type, else F32; a BF16 y (BF16 operands only: autocast's conv
    /// output) holds the f32 sum, bias included, rounded once to nearest even.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, Tensor? y = null, DType? outDType = null) =>
        Conv2d(x, weight, bias, (stride, stride), (padding, padding), y, outDType);

    /// <summary>Conv2d with a separate stride and padding per axis (H, W). x and weight are both F32, or both BF16
    /// (values widened exactly, products accumulated in f32: on CUDA, tensor cores); the output as above.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, Tensor? y = null, DType? outDType = null)
    {
        const string op = "Conv2d";
        SameBackend(op, x, weight, bias, y);
        bool bf16 = x.DType == DType.BF16 && weight.DType == DType.BF16;   // bf16 storage, f32 accumulation
        if (bf16) RequireF32(op, bias); else RequireF32(op, x, weight, bias);
        var outType = outDType ?? y?.DType ?? DType.F32;
        if (outType == DType.BF16 && !bf16)
            throw new ArgumentException($"{op}: a BF16 output needs BF16 x and weight, got {x.DType.Name()} x {x.ShapeString} and {weight.DType.Name()} weight {weight.ShapeString}");
        var g = Conv2dGeometryOf(op, x.Dims, weight.Dims, stride, padding, "x", "weight");
        CheckBias(op, bias, g, x, weight);
        y = Output(op, x, y, g.OutputShape, outType);
        if (y.Numel == 0) return y;
        if (outType == DType.BF16) x.Backend.Conv2dForwardBF16Out(x, weight, bias, y, g);
        else if (bf16) x.Backend.Conv2dForwardBF16(x, weight, bias, y, g);
        else x.Backend.Conv2dForward(x, weight, bias, y, g);
        return y;
    }

    /// <summary>
    /// y = conv2d(x, weight) + bias + residual in one pass over y: the residual [N, Cout, Ho, Wo] (the ResNet block's skip)
    /// is added in the convolution's epilogue. Types as <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, Tensor?)"/>;
    /// the residual is F32 and may not share storage with y.
    /// </summary>
    public static Tensor Conv2dResidual(Tensor x, Tensor weight, Tensor? bias, Tensor residual, int stride = 1, int padding = 0, Tensor? y = null)
    {
        const string op = "Conv2dResidual";
        SameBackend(op, x, weight, bias, residual, y);
        bool bf16 = x.DType == DType.BF16 && weight.DType == DType.BF16;
        if (bf16) RequireF32(op, bias, residual); else RequireF32(op, x, weight, bias, residual);
        var g = Conv2dGeometryOf(op, x.Dims, weight.Dims, (stride, stride), (padding, padding), "x", "weight");
        CheckBias(op, bias, g, x, weight);
        if (!Shape.Equal(residual.Dims, g.OutputShape))
            throw new ArgumentException($"{op}: residual is {residual.ShapeString}, the convolution gives {Shape.Format(g.OutputShape)} ({g})");
        if (y is not null && ReferenceEquals(y.Storage, residual.Storage))
            throw new ArgumentException($"{op}: the output may not share storage with the residual");
        y = Output(op, x, y, g.OutputShape);
        if (y.Numel == 0) return y;
        if (bf16) x.Backend.Conv2dForwardResidualBF16(x, weight, bias, residual, y, g);
        else x.Backend.Conv2dForwardResidual(x, weight, bias, residual, y, g);
        return y;
    }

    /// <summary>
    /// Gradient of Conv2d with respect to its input (torch.nn.grad.conv2d_input): dy [N, Cout, Ho, Wo] and weight give
    /// dx of <paramref name="inputShape"/>. The input shape is needed because stride &gt; 1 maps several input sizes to one
    /// output size (9×9 and 10×10 both give 5×5 at stride 2, padding 1). dy and weight are both F32 or both BF16.
    /// </summary>
    public static Tensor Conv2dBackwardInput(Tensor dy, Tensor weight, int[] inputShape, int stride = 1, int padding = 0, Tensor? dx = null) =>
        Conv2dBackwardInput(dy, weight, inputShape, (stride, stride), (padding, padding), dx);

    public static Tensor Conv2dBackwardInput(Tensor dy, Tensor weight, int[] inputShape, (int H, int W) stride, (int H, int W) padding, Tensor? dx = null)
    {
        const string op = "Conv2dBackwardInput";
        SameBackend(op, dy, weight, dx);
        bool bf16 = dy.DType == DType.BF16 && weight.DType == DType.BF16;   // bf16 storage, f32 accumulation, F32 dx
        if (!bf16) RequireF32(op, dy, weight);
        var g = Conv2dGeometryOf(op, inputShape, weight.Dims, stride, padding, "input shape", "weight");
        CheckGradOutput(op, dy, g);
        dx = Output(op, dy, dx, g.InputShape);
        if (dx.Numel == 0) return dx;
        if (g.N == 0 || g.Cout == 0) { dx.Backend.Fill(dx, 0f); return dx; }
        if (bf16) dy.Backend.Conv2dBackwardInputBF16(dy, weight, dx, g);
        else dy.Backend.Conv2dBackwardInput(dy, weight, dx, g);
        return dx;
    }

    /// <summary>
    /// Gradient of Conv2d with respect to its weight (torch.nn.grad.conv2d_weight): x and dy give dweight of
    /// <paramref name="weightShape"/> [Cout, Cin, kh, kw], summed over the batch. The result is overwritten, not accumulated.
    /// dy and x are both F32 or both BF16.
    /// </summary>
    public static Tensor Conv2dBackwardWeight(Tensor dy, Tensor x, int[] weightShape, int stride = 1, int padding = 0, Tensor? dweight = null) =>
        Conv2dBackwardWeight(dy, x, weightShape, (stride, stride), (padding, padding), dweight);

    public static Tensor Conv2dBackwardWeight(Tensor dy, Tensor x, int[] weightShape, (int H, int W) stride, (int H, int W) padding, Tensor? dweight = null)
    {
        const string op = "Conv2dBackwardWeight";
        SameBackend(op, dy, x, dweight);
        bool bf16 = dy.DType == DType.BF16 && x.DType == DType.BF16;        // bf16 storage, f32 accumulation, F32 dweight
        if (!bf16) RequireF32(op, dy, x);
        var g = Conv2dGeometryOf(op, x.Dims, weightShape, stride, padding, "x", "weight shape");
        CheckGradOutput(op, dy, g);
        dweight = Output(op, dy, dweight, g.WeightShape);
        if (dweight.Numel == 0) return dweight;
        if (g.N == 0) { dweight.Backend.Fill(dweight, 0f); return dweight; }
        if (bf16) dy.Backend.Conv2dBackwardWeightBF16(x, dy, dweight, g);
        else dy.Backend.Conv2dBackwardWeight(x, dy, dweight, g);
        return dweight;
    }

    /// <summary>Gradient of Conv2d with respect to its bias: dy [N, Cout, Ho, Wo] summed over N, Ho, Wo into [Cout].</summary>
    public static Tensor Conv2dBackwardBias(Tensor dy, Tensor? dbias = null)
    {
        const string op = "Conv2dBackwardBias";
        SameBackend(op, dy, dbias); RequireF32(op, dy);
        if (dy.Rank != 4) throw new ArgumentException($"{op}: expected dy [N, Cout, Ho, Wo] (rank 4), got {dy.ShapeString}");
        var g = new Conv2dGeometry { N = dy.Dim(0), Cout = dy.Dim(1), Ho = dy.Dim(2), Wo = dy.Dim(3) };
        return BiasGrad(op, dy, dbias, g);
    }

    // ---- conv1d (runs as a conv2d with H = 1) ----------------------------------------------------------------

    /// <summary>y = conv1d(x, weight, bias, stride, padding): x [N, Cin, L], weight [Cout, Cin, k], bias [Cout] or null.</summary>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, Tensor? y = null)
    {
        const string op = "Conv1d";
        SameBackend(op, x, weight, bias, y); RequireF32(op, x, weight, bias);
        var g = Conv1dGeometryOf(op, x.Dims, weight.Dims, stride, padding, "x", "weight");
        CheckBias(op, bias, g, x, weight);
        y = Output(op, x, y, [g.N, g.Cout, g.Wo]);
        if (y.Numel == 0) return y;
        using var x4 = x.Reshape(g.InputShape);
        using var w4 = weight.Reshape(g.WeightShape);
        using var y4 = y.Reshape(g.OutputShape);
        x.Backend.Conv2dForward(x4, w4, bias, y4, g);
        return y;
    }

    /// <summary>Gradient of Conv1d with respect to its input [N, Cin, L] (torch.nn.grad.conv1d_input).</summary>
    public static Tensor Conv1dBackwardInput(Tensor dy, Tensor weight, int[] inputShape, int stride = 1, int padding = 0, Tensor? dx = null)
    {
        const string op = "Conv1dBackwardInput";
        SameBackend(op, dy, weight, dx); RequireF32(op, dy, weight);
        var g = Conv1dGeometryOf(op, inputShape, weight.Dims, stride, padding, "input shape", "weight");
        CheckGradOutput1d(op, dy, g);
        dx = Output(op, dy, dx, [g.N, g.Cin, g.W]);
        if (dx.Numel == 0) return dx;
        if (g.N == 0 || g.Cout == 0) { dx.Backend.Fill(dx, 0f); return dx; }
        using var dy4 = dy.Reshape(g.OutputShape);
        using var w4 = weight.Reshape(g.WeightShape);
        using var dx4 = dx.Reshape(g.InputShape);
        dy.Backend.Conv2dBackwardInput(dy4, w4, dx4, g);
        return dx;
    }

    /// <summary>Gradient of Conv1d with respect to its weight [Cout, Cin, k] (torch.nn.grad.conv1d_weight), overwritten.</summary>
    public static Tensor Conv1dBackwardWeight(Tensor dy, Tensor x, int[] weightShape, int stride = 1, int padding = 0, Tensor? dweight = null)
    {
        const string op = "Conv1dBackwardWeight";
        SameBackend(op, dy, x, dweight); RequireF32(op, dy, x);
        var g = Conv1dGeometryOf(op, x.Dims, weightShape, stride, padding, "x", "weight shape");
        CheckGradOutput1d(op, dy, g);
        dweight = Output(op, dy, dweight, [g.Cout, g.Cin, g.KW]);
        if (dweight.Numel == 0) return dweight;
        if (g.N == 0) { dweight.Backend.Fill(dweight, 0f); return dweight; }
        using var x4 = x.Reshape(g.InputShape);
        using var dy4 = dy.Reshape(g.OutputShape);
        using var dw4 = dweight.Reshape(g.WeightShape);
        dy.Backend.Conv2dBackwardWeight(x4, dy4, dw4, g);
        return dweight;
    }

    /// <summary>Gradient of Conv1d with respect to its bias: dy [N, Cout, Lo] summed over N and Lo into [Cout].</summary>
    public static Tensor Conv1dBackwardBias(Tensor dy, Tensor? dbias = null)
    {
        const string op = "Conv1dBackwardBias";
        SameBackend(op, dy, dbias); RequireF32(op, dy);
        if (dy.Rank != 3) throw new ArgumentException($"{op}: expected dy [N, Cout, Lo] (rank 3), got {dy.ShapeString}");
        var g = new Conv2dGeometry { N = dy.Dim(0), Cout = dy.Dim(1), Ho = 1, Wo = dy.Dim(2) };
        using var dy4 = dy.Reshape(g.OutputShape);
        return BiasGrad(op, dy4, dbias, g);
    }

    // ---- shared checks ----------------------------------------------------------------------------------------

    static Tensor BiasGrad(string op, Tensor dy4, Tensor? dbias, in Conv2dGeometry g)
    {
        dbias = Output(op, dy4, dbias, [g.Cout]);
        if (dbias.Numel == 0) return dbias;
        if (dy4.Numel == 0) { dbias.Backend.Fill(dbias, 0f); return dbias; }
        dy4.Backend.Conv2dBackwardBias(dy4, dbias, g);
        return dbias;
    }

    static Conv2dGeometry Conv2dGeometryOf(string op, ReadOnlySpan<int> xs, ReadOnlySpan<int> ws, (int H, int W) stride, (int H, int W) padding,
        string xName, string wName)
    {
        if (xs.Length != 4) throw new ArgumentException($"{op}: expected {xName} [N, Cin, H, W] (rank 4), got {Shape.Format(xs)}");
        if (ws.Length != 4) throw new ArgumentException($"{op}: expected {wName} [Cout, Cin, kh, kw] (rank 4), got {Shape.Format(ws)}");
        Shape.Validate(xs, op); Shape.Validate(ws, op);
        var g = new Conv2dGeometry
        {
            N = xs[0], Cin = xs[1], H = xs[2], W = xs[3], Cout = ws[0], KH = ws[2], KW = ws[3],
            StrideH = stride.H, StrideW = stride.W, PadH = padding.H, PadW = padding.W,
        };
        string shapes = $"{xName} {Shape.Format(xs)}, {wName} {Shape.Format(ws)}";
        if (ws[1] != g.Cin) throw new ArgumentException($"{op}: {xName} has {g.Cin} input channels but {wName} expects {ws[1]} ({shapes})");
        if (g.KH < 1 || g.KW < 1) throw new ArgumentException($"{op}: kernel size must be at least 1 ({shapes})");
        if (g.StrideH < 1 || g.StrideW < 1) throw new ArgumentException($"{op}: stride must be at least 1, got ({g.StrideH},{g.StrideW}) ({shapes})");
        if (g.PadH < 0 || g.PadW < 0) throw new ArgumentException($"{op}: padding must be non-negative, got ({g.PadH},{g.PadW}) ({shapes})");
        g.Ho = Conv2dGeometry.OutputSize(g.H, g.KH, g.StrideH, g.PadH);
        g.Wo = Conv2dGeometry.OutputSize(g.W, g.KW, g.StrideW, g.PadW);
        if (g.Ho <= 0 || g.Wo <= 0)
            throw new ArgumentException($"{op}: output size ({g.Ho},{g.Wo}) is not positive: kernel ({g.KH},{g.KW}) is larger than the padded input ({shapes}, padding ({g.PadH},{g.PadW}))");
        long outElems = (long)g.N * g.Cout * g.Ho * g.Wo;
        if (outElems > Backend.MaxElements) throw new ArgumentException($"{op}: output [{g.N},{g.Cout},{g.Ho},{g.Wo}] has more than {Backend.MaxElements} elements ({shapes})");
        return g;
    }

    static Conv2dGeometry Conv1dGeometryOf(string op, ReadOnlySpan<int> xs, ReadOnlySpan<int> ws, int stride, int padding, string xName, string wName)
    {
        if (xs.Length != 3) throw new ArgumentException($"{op}: expected {xName} [N, Cin, L] (rank 3), got {Shape.Format(xs)}");
        if (ws.Length != 3) throw new ArgumentException($"{op}: expected {wName} [Cout, Cin, k] (rank 3), got {Shape.Format(ws)}");
        try
        {
            return Conv2dGeometryOf(op, [xs[0], xs[1], 1, xs[2]], [ws[0], ws[1], 1, ws[2]], (1, stride), (0, padding), xName, wName);
        }
        catch (ArgumentException e)
        {
            // Same check, reported with the caller's 3-D shapes and 1-D stride/padding.
            throw new ArgumentException($"{op}: invalid convolution of {xName} {Shape.Format(xs)} with {wName} {Shape.Format(ws)}, stride {stride}, padding {padding}: " +
                                        e.Message[(op.Length + 2)..], e);
        }
    }

    static void CheckBias(string op, Tensor? bias, in Conv2dGeometry g, Tensor x, Tensor weight)
    {
        if (bias is null) return;
        if (bias.Rank != 1 || bias.Dim(0) != g.Cout)
            throw new ArgumentException($"{op}: bias {bias.ShapeString} must be [{g.Cout}] (one per output channel of weight {weight.ShapeString}; x {x.ShapeString})");
    }

    static void CheckGradOutput(string op, Tensor dy, in Conv2dGeometry g)
    {
        if (!Shape.Equal(dy.Dims, g.OutputShape))
            throw new ArgumentException($"{op}: dy {dy.ShapeString} does not match the convolution output {Shape.Format(g.OutputShape)} of {g}");
    }

    static void CheckGradOutput1d(string op, Tensor dy, in Conv2dGeometry g)
    {
        int[] expected = [g.N, g.Cout, g.Wo];
        if (!Shape.Equal(dy.Dims, expected))
            throw new ArgumentException($"{op}: dy {dy.ShapeString} does not match the convolution output {Shape.Format(expected)} of x [{g.N},{g.Cin},{g.W}], weight [{g.Cout},{g.Cin},{g.KW}], stride {g.StrideW}, padding {g.PadW}");
    }
}
