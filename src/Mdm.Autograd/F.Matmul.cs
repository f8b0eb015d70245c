using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    internal sealed record MatMulAttr(bool TransA, bool TransB);

    /// <summary>op(a)·op(b) on 2-D/3-D operands (see <see cref="Ops.MatMul"/>); F32 or BF16 inputs, F32 output.</summary>
    public static Variable MatMul(Variable a, Variable b, bool transA = false, bool transB = false) =>
        Record.Op("matmul", Ops.MatMul(a.Data, b.Data, transA, transB), [a, b], new MatMulAttr(transA, transB));

    /// <summary>x·Wᵀ + b (torch.nn.functional.linear); bias optional.</summary>
    public static Variable Linear(Variable x, Variable w, Variable? bias = null) =>
        bias is null
            ? Record.Op("linear", Ops.Linear(x.Data, w.Data), [x, w])
            : Record.Op("linear", Ops.Linear(x.Data, w.Data, bias.Data), [x, w, bias]);

    /// <summary>Linear whose operands already hold bf16 values (autocast): where the backend has tensor cores the
    /// forward runs on bf16 copies of them (exact), otherwise as <see cref="Linear(Variable, Variable, Variable?)"/>.
    /// The backward then runs on bf16 copies too (dy rounded to bf16, as under torch.autocast).</summary>
    public static Variable Linear(Variable x, Variable w, Variable? bias, bool bf16Operands)
    {
        if (!bf16Operands || !x.Data.Backend.HasTensorCores) return Linear(x, w, bias);
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        return bias is null
            ? Record.Op("linear", Ops.Linear(xb, wb), [x, w], LinearBf16)
            : Record.Op("linear", Ops.Linear(xb, wb, bias.Data), [x, w, bias], LinearBf16);
    }

    /// <summary>Marks a linear node whose forward ran on bf16 copies.</summary>
    internal sealed record LinearAttr(bool Bf16);
    static readonly LinearAttr LinearBf16 = new(true);
}

internal static partial class BackwardRules
{
    static partial void ApplyMatmul(Node n, Tensor g, ref Tensor?[]? result)
    {
        switch (n.Op)
        {
            case "matmul":
            {
                var a = (F.MatMulAttr)n.Attributes!;
                var (da, db) = Ops.MatMulBackward(g, n.Inputs[0].Data, n.Inputs[1].Data, a.TransA, a.TransB,
                    wantA: n.NeedsGrad(0), wantB: n.NeedsGrad(1));
                result = [da, db];
                break;
            }
            case "linear":
            {
                bool hasBias = n.Inputs.Length == 3;
                Tensor x = n.Inputs[0].Data, w = n.Inputs[1].Data;
                Tensor? xb = null, wb = null;
                if (n.Attributes is F.LinearAttr { Bf16: true }) { xb = Ops.ToBF16(x); wb = Ops.ToBF16(w); }   // LinearBackward rounds dy to bf16
                var (dx, dw, db) = Ops.LinearBackward(g, xb ?? x, wb ?? w,
                    wantX: n.NeedsGrad(0), wantW: n.NeedsGrad(1), wantBias: hasBias && n.NeedsGrad(2));
                xb?.Dispose(); wb?.Dispose();
                result = hasBias ? [dx, dw, db] : [dx, dw];
                break;
            }
        }
    }
}
