namespace Mdm.Kernels;

public static partial class Ops
{
    /// <summary>
    /// Largest head dimension the GPU attention kernels take (their shared-memory tiles hold rows of this length).
    /// The CPU backend takes any D.
    /// </summary>
    public const int AttentionMaxGpuHeadDim = 128;

    /// <summary>
    /// Multi-head scaled dot-product attention, as PyTorch's <c>F.scaled_dot_product_attention(q, k, v, attn_mask)</c>
    /// with the default scale and a boolean key mask broadcast over heads and queries:
    /// <c>o = softmax((q·D^-1/4)(k·D^-1/4)ᵀ + mask) · v</c>, softmax over the keys in f32.
    /// <list type="bullet">
    /// <item>q [B,H,Nq,D]; k and v [B,H,Nk,D] (self-attention: Nk = Nq; cross-attention: Nk text tokens), all F32 or all
    /// BF16 (autocast's bf16 storage: read as they are, products and softmax in f32, lse F32).</item>
    /// <item>o is <paramref name="outDType"/>, else the given o's type, else F32. A BF16 o (BF16 q, k, v only: autocast's
    /// attention output, as torch's SDPA on bf16 inputs returns bf16) holds the f32 result rounded once to nearest even,
    /// written by the kernel's own store (CPU, SIMT, tensor cores).</item>
    /// <item>mask: null, or an F32 key-padding mask [B,Nk]: 0 = masked key, any other value (use 1) = attend.</item>
    /// <item>Returns o [B,H,Nq,D] and lse [B,H,Nq] = log Σ_j exp(s_ij) over the attended keys, which the backward needs.</item>
    /// <item>A query row whose keys are all masked (PyTorch gives NaN there) has o = 0 and lse = +∞ here, and zero
    /// gradients in <see cref="AttentionBackward"/>.</item>
    /// </list>
    /// </summary>
    public static (Tensor O, Tensor Lse) Attention(Tensor q, Tensor k, Tensor v, Tensor? mask = null, Tensor? o = null, Tensor? lse = null,
        DType? outDType = null)
    {
        const string op = "Attention";
        SameBackend(op, q, k, v, mask, o, lse); RequireAttentionDTypes(op, q, k, v); RequireF32(op, mask);
        CheckAttentionInputs(op, q, k, v, mask);
        var outType = outDType ?? o?.DType ?? DType.F32;
        RequireAttentionOutputDType(op, q, outType, "o");
        int b = q.Dim(0), h = q.Dim(1), nq = q.Dim(2), d = q.Dim(3);
        bool ownO = o is null;
        o = Output(op, q, o, q.Dims, outType);
        try { lse = Output(op, q, lse, [b, h, nq]); }
        catch { if (ownO) o.Dispose(); throw; }
        if (lse.Numel == 0) return (o, lse);
        if (k.Dim(2) == 0) { FillZero(o); lse.Backend.Fill(lse, float.PositiveInfinity); }   // no keys: every row is fully masked
        else q.Backend.AttentionForward(q, k, v, mask, o, lse, AttentionScale(d));
        return (o, lse);
    }

    /// <summary>
    /// Backward of <see cref="Attention"/>: dq, dk, dv from the forward's inputs, its outputs o and lse, and the
    /// gradient dO of o. Gradients of fully masked query rows (and into masked keys) are 0. q, k, v are F32 or BF16 as in
    /// the forward; o is F32, or BF16 with BF16 q (the bf16 output, read as it is); lse, dO and the gradients are F32
    /// (autocast hands dO over holding bf16 values, as torch's gradient of a bf16 output is bf16).
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO,
        Tensor? mask = null, Tensor? dq = null, Tensor? dk = null, Tensor? dv = null)
    {
        const string op = "AttentionBackward";
        SameBackend(op, q, k, v, o, lse, dO, mask, dq, dk, dv); RequireAttentionDTypes(op, q, k, v); RequireF32(op, lse, dO, mask);
        RequireAttentionOutputDType(op, q, o.DType, "o");
        CheckAttentionInputs(op, q, k, v, mask);
        if (!Shape.Equal(o.Dims, q.Dims))
            throw new ArgumentException($"{op}: o {o.ShapeString} must have the shape of q {q.ShapeString}");
        if (!Shape.Equal(dO.Dims, q.Dims))
            throw new ArgumentException($"{op}: dO {dO.ShapeString} must have the shape of q {q.ShapeString}");
        if (lse.Rank != 3 || lse.Dim(0) != q.Dim(0) || lse.Dim(1) != q.Dim(1) || lse.Dim(2) != q.Dim(2))
            throw new ArgumentException($"{op}: lse {lse.ShapeString} must be [B,H,Nq] = [{q.Dim(0)},{q.Dim(1)},{q.Dim(2)}] for q {q.ShapeString}");
        bool ownDq = dq is null, ownDk = dk is null;
        dq = Output(op, q, dq, q.Dims);
        try
        {
            dk = Output(op, k, dk, k.Dims);
            try { dv = Output(op, v, dv, v.Dims); }
            catch { if (ownDk) dk.Dispose(); throw; }
        }
        catch { if (ownDq) dq.Dispose(); throw; }
        if (q.Dim(2) == 0 || k.Dim(2) == 0)
        {
            if (dq.Numel > 0) dq.Backend.Fill(dq, 0f);
            if (dk.Numel > 0) { dk.Backend.Fill(dk, 0f); dv.Backend.Fill(dv, 0f); }
        }
        else if (dq.Numel > 0) q.Backend.AttentionBackward(q, k, v, o, lse, dO, mask, dq, dk, dv, AttentionScale(q.Dim(3)));
        return (dq, dk, dv);
    }

    /// <summary>
    /// Rotary position encoding along axis 2 of x [B,H,N,D] (D even), rotate-half convention (GPT-NeoX / Hugging Face
    /// <c>rotate_half</c>): for i &lt; D/2, with θ_i = (offset + n)·theta^(−2i/D),
    /// <c>y[i] = x[i]·cos θ_i − x[i+D/2]·sin θ_i</c>, <c>y[i+D/2] = x[i+D/2]·cos θ_i + x[i]·sin θ_i</c>.
    /// Positions are offset..offset+N−1 (0..N−1 by default). y may be x (in place).
    /// Note: <c>rotary_embedding_torch</c> pairs interleaved channels (2i, 2i+1) instead; the two differ by a fixed
    /// permutation of the q/k channels, so attention is the same up to how the qkv projection is laid out.
    /// </summary>
    public static Tensor Rotary(Tensor x, Tensor? y = null, float theta = 10000f, int offset = 0) =>
        RotaryCore("Rotary", x, y, theta, offset, inverse: false);

    /// <summary>Backward of <see cref="Rotary"/>: rotates the gradient dy by −θ_i (the rotation is orthogonal).</summary>
    public static Tensor RotaryBackward(Tensor dy, Tensor? dx = null, float theta = 10000f, int offset = 0) =>
        RotaryCore("RotaryBackward", dy, dx, theta, offset, inverse: true);

    static Tensor RotaryCore(string op, Tensor x, Tensor? y, float theta, int offset, bool inverse)
    {
        SameBackend(op, x, y); RequireF32(op, x);
        if (x.Rank != 4) throw new ArgumentException($"{op}: expected x [B,H,N,D], got {x.ShapeString}");
        if (x.Dim(3) % 2 != 0) throw new ArgumentException($"{op}: head dim D must be even, got x {x.ShapeString}");
        if (!(theta > 1f) || float.IsInfinity(theta)) throw new ArgumentException($"{op}: theta must be a finite base > 1, got {theta} for x {x.ShapeString}");
        if (offset < 0) throw new ArgumentException($"{op}: position offset must be >= 0, got {offset} for x {x.ShapeString}");
        y = Output(op, x, y, x.Dims);
        if (x.Numel > 0) x.Backend.Rotary(x, y, theta, offset, inverse);
        return y;
    }

    /// <summary>D^-1/4 on q times D^-1/4 on k, applied once to the dot product.</summary>
    static float AttentionScale(int d) => (float)(1.0 / Math.Sqrt(Math.Max(d, 1)));

    /// <summary>q, k and v all F32 or all BF16.</summary>
    static void RequireAttentionDTypes(string op, Tensor q, Tensor k, Tensor v)
    {
        if (q.DType is not (DType.F32 or DType.BF16))
            throw new ArgumentException($"{op}: expected F32 or BF16 q, got {q.DType.Name()} tensor {q.ShapeString}");
        if (k.DType != q.DType || v.DType != q.DType)
            throw new ArgumentException($"{op}: q, k and v must share a dtype, got q {q.DType.Name()}, k {k.DType.Name()}, v {v.DType.Name()}");
    }

    /// <summary>o is F32, or BF16 when q, k, v are.</summary>
    static void RequireAttentionOutputDType(string op, Tensor q, DType outType, string name)
    {
        if (outType == DType.F32 || (outType == DType.BF16 && q.DType == DType.BF16)) return;
        throw new ArgumentException($"{op}: {name} must be F32, or BF16 with BF16 q, k, v; got {outType.Name()} {name} for {q.DType.Name()} q {q.ShapeString}");
    }

    /// <summary>Zeros into an F32 or BF16 tensor (bf16 0 is the bit pattern 0).</summary>
    static void FillZero(Tensor t)
    {
        if (t.DType == DType.F32) { t.Backend.Fill(t, 0f); return; }
        using var zero = t.Backend.Empty(DType.F32, t.Shape);
        zero.Backend.Fill(zero, 0f);
        t.Backend.ConvertToBF16(zero, t);
    }

    static void CheckAttentionInputs(string op, Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException($"{op}: expected q [B,H,Nq,D], k and v [B,H,Nk,D], got q {q.ShapeString}, k {k.ShapeString}, v {v.ShapeString}");
        if (!Shape.Equal(k.Dims, v.Dims))
            throw new ArgumentException($"{op}: k {k.ShapeString} and v {v.ShapeString} must have the same shape");
        if (k.Dim(0) != q.Dim(0) || k.Dim(1) != q.Dim(1))
            throw new ArgumentException($"{op}: batch and heads of q {q.ShapeString} and k {k.ShapeString} differ");
        if (q.Dim(3) == 0)
            throw new ArgumentException($"{op}: head dim D must be at least 1, got q {q.ShapeString}");
        if (k.Dim(3) != q.Dim(3))
            throw new ArgumentException($"{op}: head dim D of q {q.ShapeString} and k {k.ShapeString} differ");
        if (mask is not null && (mask.Rank != 2 || mask.Dim(0) != k.Dim(0) || mask.Dim(1) != k.Dim(2)))
            throw new ArgumentException($"{op}: key padding mask {mask.ShapeString} must be [B,Nk] = [{k.Dim(0)},{k.Dim(2)}] for q {q.ShapeString}, k {k.ShapeString}");
        if (q.Backend.Kind != BackendKind.Cpu && q.Dim(3) > AttentionMaxGpuHeadDim)
            throw new ArgumentException($"{op}: head dim D = {q.Dim(3)} exceeds {AttentionMaxGpuHeadDim}, the GPU kernels' limit (q {q.ShapeString}, k {k.ShapeString})");
    }
}
