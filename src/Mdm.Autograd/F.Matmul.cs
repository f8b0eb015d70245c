using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>op(a)·op(b) on 2-D/3-D operands (see <see cref="Ops.MatMul"/>); F32 or BF16 inputs, F32 output.</summary>
    public static Variable MatMul(Variable a, Variable b, bool transA = false, bool transB = false) =>
        Record.Op("matmul", Ops.MatMul(a.Data, b.Data, transA, transB), [a, b], (n, g) =>
        {
            var (da, db) = Ops.MatMulBackward(g, n.Input(0), n.Input(1), transA, transB, wantA: n.NeedsGrad(0), wantB: n.NeedsGrad(1));
            return [da, db];
        });

    /// <summary>x·Wᵀ + b (torch.nn.functional.linear); bias optional.</summary>
    public static Variable Linear(Variable x, Variable w, Variable? bias = null) =>
        bias is null
            ? Record.Op("linear", Ops.Linear(x.Data, w.Data), [x, w], (n, g) => LinearBackward(n, g, bf16: false))
            : Record.Op("linear", Ops.Linear(x.Data, w.Data, bias.Data), [x, w, bias], (n, g) => LinearBackward(n, g, bf16: false));

    /// <summary>Linear whose operands already hold bf16 values (autocast): where the backend has tensor cores the
    /// forward runs on bf16 copies of them (exact), otherwise as <see cref="Linear(Variable, Variable, Variable?)"/>.
    /// The backward then runs on bf16 copies too (dy rounded to bf16, as under torch.autocast).</summary>
    public static Variable Linear(Variable x, Variable w, Variable? bias, bool bf16Operands)
    {
        if (!bf16Operands || !x.Data.Backend.HasTensorCores) return Linear(x, w, bias);
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        return bias is null
            ? Record.Op("linear", Ops.Linear(xb, wb), [x, w], (n, g) => LinearBackward(n, g, bf16: true))
            : Record.Op("linear", Ops.Linear(xb, wb, bias.Data), [x, w, bias], (n, g) => LinearBackward(n, g, bf16: true));
    }

    /// <summary>bf16: the forward ran on bf16 copies, so the backward does too (LinearBackward rounds dy to bf16).</summary>
    static Tensor?[] LinearBackward(Node n, Tensor g, bool bf16)
    {
        bool hasBias = n.Inputs.Length == 3;
        Tensor x = n.Input(0), w = n.Input(1);
        Tensor? xb = null, wb = null;
        if (bf16) { xb = Ops.ToBF16(x); wb = Ops.ToBF16(w); }
        var (dx, dw, db) = Ops.LinearBackward(g, xb ?? x, wb ?? w,
            wantX: n.NeedsGrad(0), wantW: n.NeedsGrad(1), wantBias: hasBias && n.NeedsGrad(2));
        xb?.Dispose(); wb?.Dispose();
        return hasBias ? [dx, dw, db] : [dx, dw];
    }
}
