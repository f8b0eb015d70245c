using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>
    /// Multi-head attention, q [B,H,Nq,D], k and v [B,H,Nk,D], optional key padding mask [B,Nk] (0 = masked, F32,
    /// owned by the caller and kept alive until backward). Scores (q·D^-1/4)(k·D^-1/4)ᵀ, softmax in f32.
    /// </summary>
    public static Variable Attention(Variable q, Variable k, Variable v, Tensor? mask = null)
    {
        var (o, lse) = Ops.Attention(q.Data, k.Data, v.Data, mask);
        return Record.Op("attention", o, [q, k, v], (n, g) =>
        {
            var (dq, dk, dv) = Ops.AttentionBackward(n.Input(0), n.Input(1), n.Input(2), n.Output.Data, n.Saved[0], g, mask);
            return [dq, dk, dv];
        }, saved: [lse], savesOutput: true);
    }

    /// <summary>Rotary position encoding along the token axis (rotate-half pairs (i, i + D/2)).</summary>
    public static Variable Rotary(Variable x, float theta = 10000f, int offset = 0) =>
        Record.Op("rotary", Ops.Rotary(x.Data, null, theta, offset), [x], (_, g) => [Ops.RotaryBackward(g, null, theta, offset)]);
}
