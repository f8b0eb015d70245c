using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    internal sealed record AttentionAttr(Tensor? Mask);
    internal sealed record RotaryAttr(float Theta, int Offset);

    /// <summary>
    /// Multi-head attention, q [B,H,Nq,D], k and v [B,H,Nk,D], optional key padding mask [B,Nk] (0 = masked, F32,
    /// owned by the caller and kept alive until backward). Scores (q·D^-1/4)(k·D^-1/4)ᵀ, softmax in f32.
    /// </summary>
    public static Variable Attention(Variable q, Variable k, Variable v, Tensor? mask = null)
    {
        var (o, lse) = Ops.Attention(q.Data, k.Data, v.Data, mask);
        return Record.Op("attention", o, [q, k, v], new AttentionAttr(mask), saved: [lse], savesOutput: true);
    }

    /// <summary>Rotary position encoding along the token axis (rotate-half pairs (i, i + D/2)).</summary>
    public static Variable Rotary(Variable x, float theta = 10000f, int offset = 0) =>
        Record.Op("rotary", Ops.Rotary(x.Data, null, theta, offset), [x], new RotaryAttr(theta, offset));
}

internal static partial class BackwardRules
{
    static partial void ApplyAttention(Node n, Tensor g, ref Tensor?[]? result)
    {
        switch (n.Op)
        {
            case "attention":
            {
                var a = (F.AttentionAttr)n.Attributes!;
                var (dq, dk, dv) = Ops.AttentionBackward(n.Inputs[0].Data, n.Inputs[1].Data, n.Inputs[2].Data,
                    n.Output.Data, n.Saved[0], g, a.Mask);
                result = [dq, dk, dv];
                break;
            }
            case "rotary":
            {
                var a = (F.RotaryAttr)n.Attributes!;
                result = [Ops.RotaryBackward(g, null, a.Theta, a.Offset)];
                break;
            }
        }
    }
}
