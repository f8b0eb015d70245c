namespace Mdm.Kernels;

public static partial class Ops
{
    /// <summary>y = a + b, broadcasting F32 operands. A BF16 operand (autocast's bf16 storage) takes torch's type
    /// promotion: a and b of one shape, widened as they are read and summed in f32; y is BF16 (rounded once) when both
    /// are BF16, else F32.</summary>
    public static Tensor Add(Tensor a, Tensor b, Tensor? y = null) =>
        a.DType == DType.BF16 || b.DType == DType.BF16 ? AddWidened(a, b, y) : Binary("Add", BinaryOp.Add, a, b, y);
    public static Tensor Sub(Tensor a, Tensor b, Tensor? y = null) => Binary("Sub", BinaryOp.Sub, a, b, y);
    public static Tensor Mul(Tensor a, Tensor b, Tensor? y = null) => Binary("Mul", BinaryOp.Mul, a, b, y);

    static Tensor AddWidened(Tensor a, Tensor b, Tensor? y)
    {
        const string op = "Add";
        SameBackend(op, a, b, y); RequireF32OrBF16(op, a, b);
        if (!Shape.Equal(a.Dims, b.Dims))
            throw new ArgumentException($"{op}: a BF16 operand needs operands of one shape, got {a.DType.Name()} {a.ShapeString} and {b.DType.Name()} {b.ShapeString}");
        var outType = a.DType == DType.BF16 && b.DType == DType.BF16 ? DType.BF16 : DType.F32;
        y = Output(op, a, y, a.Dims, outType);
        if (y.Numel == 0) return y;
        if (a.DType == DType.F32) (a, b) = (b, a);   // f32 addition commutes exactly: the backend sees BF16 a first
        a.Backend.AddWidened(a, b, y);
        return y;
    }

    static Tensor Binary(string op, BinaryOp kind, Tensor a, Tensor b, Tensor? y)
    {
        SameBackend(op, a, b, y); RequireF32(op, a, b);
        var shape = Shape.Broadcast(a.Dims, b.Dims)
            ?? throw new ArgumentException($"{op}: shapes {a.ShapeString} and {b.ShapeString} do not broadcast");
        y = Output(op, a, y, shape);
        if (y.Numel > 0) a.Backend.Binary(kind, a, b, y, BroadcastPlan.Create(a.Dims, b.Dims, shape, op));
        return y;
    }

    /// <summary>
    /// Backward of a broadcasting Add/Sub: da = sum of dy over a's broadcast axes, db likewise (negated for Sub).
    /// Either output may be skipped by passing wantA/wantB false.
    /// </summary>
    public static (Tensor? da, Tensor? db) AddBackward(Tensor dy, int[] aShape, int[] bShape, bool wantA = true, bool wantB = true)
    {
        SameBackend("AddBackward", dy); RequireF32("AddBackward", dy);
        CheckBroadcastGrad("AddBackward", dy, aShape, bShape);
        return (wantA ? SumTo(dy, aShape) : null, wantB ? SumTo(dy, bShape) : null);
    }

    /// <summary>Backward of a broadcasting Mul: da = sum_to(dy·b, a.shape), db = sum_to(dy·a, b.shape).</summary>
    public static (Tensor? da, Tensor? db) MulBackward(Tensor dy, Tensor a, Tensor b, bool wantA = true, bool wantB = true)
    {
        SameBackend("MulBackward", dy, a, b); RequireF32("MulBackward", dy, a, b);
        CheckBroadcastGrad("MulBackward", dy, a.Shape, b.Shape);
        Tensor? da = null, db = null;
        if (wantA) { using var t = Mul(dy, b); da = SumTo(t, a.Shape); }
        if (wantB) { using var t = Mul(dy, a); db = SumTo(t, b.Shape); }
        return (da, db);
    }

    static void CheckBroadcastGrad(string op, Tensor dy, int[] aShape, int[] bShape)
    {
        var shape = Shape.Broadcast(aShape, bShape)
            ?? throw new ArgumentException($"{op}: shapes {Shape.Format(aShape)} and {Shape.Format(bShape)} do not broadcast");
        if (!Shape.Equal(shape, dy.Dims))
            throw new ArgumentException($"{op}: gradient has shape {dy.ShapeString}, the forward output was {Shape.Format(shape)}");
    }

    public static Tensor Scale(Tensor x, float alpha, Tensor? y = null)
    {
        SameBackend("Scale", x, y); RequireF32("Scale", x);
        y = Output("Scale", x, y, x.Dims);
        if (x.Numel > 0) x.Backend.Scale(x, alpha, y);
        return y;
    }

    /// <summary>SiLU(x) = x·sigmoid(x).</summary>
    public static Tensor Silu(Tensor x, Tensor? y = null)
    {
        SameBackend("Silu", x, y); RequireF32("Silu", x);
        y = Output("Silu", x, y, x.Dims);
        if (x.Numel > 0) x.Backend.SiluForward(x, y);
        return y;
    }

    /// <summary>dx = dy·s·(1 + x·(1 − s)), s = sigmoid(x).</summary>
    public static Tensor SiluBackward(Tensor x, Tensor dy, Tensor? dx = null)
    {
        SameBackend("SiluBackward", x, dy, dx); RequireF32("SiluBackward", x, dy); SameShape("SiluBackward", x, dy);
        dx = Output("SiluBackward", x, dx, x.Dims);
        if (x.Numel > 0) x.Backend.SiluBackward(x, dy, dx);
        return dx;
    }

    /// <summary>Materialise x broadcast to <paramref name="shape"/> (NumPy rules).</summary>
    public static Tensor BroadcastTo(Tensor x, int[] shape, Tensor? y = null)
    {
        SameBackend("BroadcastTo", x, y); RequireF32("BroadcastTo", x);
        var b = Shape.Broadcast(x.Dims, shape);
        if (b is null || !Shape.Equal(b, shape))
            throw new ArgumentException($"BroadcastTo: {x.ShapeString} cannot be broadcast to {Shape.Format(shape)}");
        y = Output("BroadcastTo", x, y, shape);
        if (y.Numel > 0) x.Backend.BroadcastTo(x, y, BroadcastPlan.Create(x.Dims, x.Dims, shape, "BroadcastTo"));
        return y;
    }
}
