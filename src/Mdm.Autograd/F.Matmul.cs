using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

public sealed record MatMulAttributes(bool TransA, bool TransB);
/// <summary>Bf16Operands: x and w already hold bf16 values (autocast); where the backend has tensor cores the forward
/// runs on bf16 copies of them (exact), and so does the backward (dy rounded to bf16, as under torch.autocast). BF16 x
/// and w (autocast's bf16 storage) go to the bf16 kernels as they are; off tensor cores the backward widens them and keeps
/// dy f32, as the rounded autocast does. Bf16Output: the output is bf16 as under torch.autocast (a BF16 tensor from the
/// GEMM's epilogue with BF16 operands, else the f32 output rounded in place); its gradient is rounded to bf16 values on
/// entry to the backward, as for <see cref="ConvAttributes"/>.</summary>
public sealed record LinearAttributes(bool Bf16Operands, bool Bf16Output = false);

public static partial class F
{
    /// <summary>op(a)·op(b) on 2-D/3-D operands (see <see cref="Ops.MatMul"/>); F32 or BF16 inputs, F32 output.</summary>
    public static OpDefinition<MatMulAttributes> MatMulOp { get; } = OpDefinition.Register(new OpDefinition<MatMulAttributes>("matmul",
        (x, a) => (Ops.MatMul(x[0], x[1], a.TransA, a.TransB), []), (c, g) =>
        {
            var (da, db) = Ops.MatMulBackward(g, c.Input(0), c.Input(1), c.Attributes.TransA, c.Attributes.TransB,
                wantA: c.NeedsGrad(0), wantB: c.NeedsGrad(1));
            return [da, db];
        })
    {
        Reference = (x, s, a) => Ref.MatMul(x[0], s[0], a.TransA, x[1], s[1], a.TransB, out _, out _),
        CheckShapes = [[2, 3, 4], [2, 5, 4]], BenchShapes = [[16, 1024, 128], [16, 1024, 128]], CheckAttributes = new(false, true),
    });

    /// <summary>x·Wᵀ + b (torch.nn.functional.linear): inputs x [.., in], w [out, in] and optionally bias [out].</summary>
    public static OpDefinition<LinearAttributes> LinearOp { get; } = OpDefinition.Register(new OpDefinition<LinearAttributes>("linear",
        (x, a) =>
        {
            var bias = x.Length > 2 ? x[2] : null;
            if (a.Bf16Output && x[0].DType == DType.BF16) return (Ops.Linear(x[0], x[1], bias, outDType: DType.BF16), []);
            if (x[0].DType == DType.BF16 || !OnTensorCores(x[0], a)) return (RoundedIf(a.Bf16Output, Ops.Linear(x[0], x[1], bias)), []);
            using var xb = Ops.ToBF16(x[0]);
            using var wb = Ops.ToBF16(x[1]);
            return (RoundedIf(a.Bf16Output, Ops.Linear(xb, wb, bias)), []);
        }, (c, g) => WithBf16OutputGradient(c.Attributes.Bf16Output, g, gr => LinearBackward(c, gr)))
    {
        Reference = (x, s, bf16) => Ref.Linear(x[0], x[1], s[1][0], s[1][1], x.Length > 2 ? x[2] : null, out _),
        CheckShapes = [[3, 4], [5, 4], [5]], BenchShapes = [[16 * 256, 512], [512, 512], [512]], CheckAttributes = new(false),
    });

    public static Variable MatMul(Variable a, Variable b, bool transA = false, bool transB = false) => MatMulOp.Apply(new(transA, transB), a, b);

    public static Variable Linear(Variable x, Variable w, Variable? bias = null) =>
        LinearOp.Apply(new(false), bias is null ? [x, w] : [x, w, bias]);

    /// <summary>Linear whose operands already hold bf16 values (autocast); see <see cref="LinearAttributes"/>.</summary>
    public static Variable Linear(Variable x, Variable w, Variable? bias, bool bf16Operands, bool bf16Output = false) =>
        LinearOp.Apply(new(bf16Operands, bf16Output), bias is null ? [x, w] : [x, w, bias]);

    static bool OnTensorCores(Tensor x, LinearAttributes a) => a.Bf16Operands && x.Backend.HasTensorCores;

    /// <summary>On tensor cores the forward ran on bf16 copies, so the backward does too (LinearBackward rounds dy to bf16).</summary>
    static Tensor?[] LinearBackward(OpContext<LinearAttributes> c, Tensor g)
    {
        bool hasBias = c.InputCount == 3, tensorCores = OnTensorCores(g, c.Attributes);
        Tensor x = c.Input(0), w = c.Input(1);
        Tensor? xb = null, wb = null;
        // Off tensor cores dy stays f32, as under the rounded autocast: BF16 operands (bf16 storage) are widened.
        if (tensorCores && x.DType == DType.F32) { xb = Ops.ToBF16(x); wb = Ops.ToBF16(w); }
        else if (!tensorCores && x.DType == DType.BF16) { xb = Ops.ToF32(x); wb = Ops.ToF32(w); }
        var (dx, dw, db) = Ops.LinearBackward(g, xb ?? x, wb ?? w,
            wantX: c.NeedsGrad(0), wantW: c.NeedsGrad(1), wantBias: hasBias && c.NeedsGrad(2));
        xb?.Dispose(); wb?.Dispose();
        return hasBias ? [dx, dw, db] : [dx, dw];
    }
}
