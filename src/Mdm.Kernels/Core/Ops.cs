namespace Mdm.Kernels;

/// <summary>
/// The checked front door to every kernel: validates devices, dtypes and shapes (ArgumentException naming the op and
/// the shapes), allocates the output when none is given, and dispatches to the tensors' backend.
/// Forward and backward of each op sit side by side.
/// </summary>
public static partial class Ops
{
    // ---- validation helpers -----------------------------------------------------------------------------------
    static void SameBackend(string op, Tensor first, params Tensor?[] others)
    {
        ObjectDisposedException.ThrowIf(first.IsDisposed, first);
        foreach (var t in others)
        {
            if (t is null) continue;
            ObjectDisposedException.ThrowIf(t.IsDisposed, t);
            if (!ReferenceEquals(t.Backend, first.Backend))
                throw new ArgumentException($"{op}: tensors live on different devices ({first.Backend.Info.KindName} {first.ShapeString} and {t.Backend.Info.KindName} {t.ShapeString})");
        }
    }

    static void RequireF32(string op, params Tensor?[] tensors)
    {
        foreach (var t in tensors)
            if (t is not null && t.DType != DType.F32)
                throw new ArgumentException($"{op}: expected F32, got {t.DType.Name()} tensor {t.ShapeString}");
    }

    /// <summary>F32 or BF16 (autocast's bf16 storage) tensors; nulls are skipped.</summary>
    static void RequireF32OrBF16(string op, params Tensor?[] tensors)
    {
        foreach (var t in tensors)
            if (t is not null && t.DType is not (DType.F32 or DType.BF16))
                throw new ArgumentException($"{op}: expected F32 or BF16, got {t.DType.Name()} tensor {t.ShapeString}");
    }

    static Tensor Output(string op, Tensor like, Tensor? output, ReadOnlySpan<int> shape, DType dtype = DType.F32)
    {
        if (output is null) return like.Backend.Empty(dtype, shape.ToArray());
        if (!Shape.Equal(output.Dims, shape))
            throw new ArgumentException($"{op}: output has shape {output.ShapeString}, expected {Shape.Format(shape)}");
        if (output.DType != dtype)
            throw new ArgumentException($"{op}: output is {output.DType.Name()}, expected {dtype.Name()}");
        return output;
    }

    static void SameShape(string op, Tensor a, Tensor b)
    {
        if (!Shape.Equal(a.Dims, b.Dims))
            throw new ArgumentException($"{op}: shapes differ: {a.ShapeString} and {b.ShapeString}");
    }

    // ---- fill / copy / convert --------------------------------------------------------------------------------
    public static Tensor Fill(Tensor y, float value)
    {
        SameBackend("Fill", y); RequireF32("Fill", y);
        if (y.Numel > 0) y.Backend.Fill(y, value);
        return y;
    }

    /// <summary>y = x (F32, or BF16 values moved as they are); y has x's dtype.</summary>
    public static Tensor Copy(Tensor x, Tensor? y = null)
    {
        SameBackend("Copy", x, y); RequireCopyable("Copy", x);
        y = Output("Copy", x, y, x.Dims, x.DType);
        if (x.Numel == 0) return y;
        if (x.DType == DType.BF16) x.Backend.CopyBlocks(x, 0, 0, y, 0, 0, 1, checked((int)x.Numel));
        else x.Backend.Copy(x, y);
        return y;
    }

    public static Tensor ToBF16(Tensor x, Tensor? y = null)
    {
        SameBackend("ToBF16", x, y); RequireF32("ToBF16", x);
        y = Output("ToBF16", x, y, x.Dims, DType.BF16);
        if (x.Numel > 0) x.Backend.ConvertToBF16(x, y);
        return y;
    }

    /// <summary>y = x rounded to the nearest bf16 value (ties to even), kept in F32 storage: autocast's cast.
    /// One pass (ToBF16 then ToF32 would be two launches and a temporary).</summary>
    public static Tensor RoundToBF16(Tensor x, Tensor? y = null)
    {
        SameBackend("RoundToBF16", x, y); RequireF32("RoundToBF16", x);
        y = Output("RoundToBF16", x, y, x.Dims);
        if (x.Numel > 0) x.Backend.RoundToBF16(x, y);
        return y;
    }

    public static Tensor ToF32(Tensor x, Tensor? y = null)
    {
        SameBackend("ToF32", x, y);
        if (x.DType != DType.BF16) throw new ArgumentException($"ToF32: expected BF16, got {x.DType.Name()} tensor {x.ShapeString}");
        y = Output("ToF32", x, y, x.Dims);
        if (x.Numel > 0) x.Backend.ConvertToF32(x, y);
        return y;
    }

    // ---- random -----------------------------------------------------------------------------------------------
    /// <summary>Uniform [lo, hi) from Philox stream (seed, subsequence); identical on every backend.</summary>
    public static Tensor RandomUniform(Tensor y, ulong seed, ulong subsequence = 0, float lo = 0f, float hi = 1f)
    {
        SameBackend("RandomUniform", y); RequireF32("RandomUniform", y);
        if (!(hi > lo)) throw new ArgumentException($"RandomUniform: need lo < hi, got [{lo}, {hi})");
        if (y.Numel > 0) y.Backend.RandomUniform(y, seed, subsequence, lo, hi);
        return y;
    }

    /// <summary>Normal(mean, std²) by Box–Muller over Philox stream (seed, subsequence), element i from block
    /// <paramref name="firstBlock"/> + i/4: a fill from block k·n/4 equals elements [k·n, (k + 1)·n) of a longer fill.</summary>
    public static Tensor RandomNormal(Tensor y, ulong seed, ulong subsequence = 0, float mean = 0f, float std = 1f, ulong firstBlock = 0)
    {
        SameBackend("RandomNormal", y); RequireF32("RandomNormal", y);
        if (!(std >= 0)) throw new ArgumentException($"RandomNormal: std must be >= 0, got {std}");
        if (y.Numel > 0) y.Backend.RandomNormal(y, seed, subsequence, mean, std, firstBlock);
        return y;
    }
}
