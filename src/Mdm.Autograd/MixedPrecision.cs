using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>How autocast hands bf16 operands to conv, linear and attention.</summary>
public enum AutocastStorage
{
    /// <summary>f32 tensors holding bf16 values (one rounding pass per operand): the reference emulation.</summary>
    RoundedF32,
    /// <summary>BF16 tensors (half the bytes), which the ops also save for their backward; the norms that feed them
    /// write the bf16 copy themselves.</summary>
    Bf16,
}

/// <summary>
/// bf16 autocast (ml-mdm's fp16=1 = torch.autocast(dtype=bfloat16)): inside <see cref="Bf16"/>, layers pass the
/// operands of matmuls, convolutions and attention through <see cref="F.Autocast"/>, which makes them bf16 (round to
/// nearest even) while products still accumulate in f32; their gradients are rounded to bf16 as autocast's cast does
/// and reach f32 values as F32. Norms, softmax statistics, upsampling, losses, reductions and the optimizer's f32 master
/// weights stay f32. <see cref="AutocastStorage"/> picks whether the operands are BF16 tensors or f32 tensors holding the
/// same bf16 values; both give the same numbers up to the rounding of the output gradients.
/// </summary>
public static class MixedPrecision
{
    [ThreadStatic] static int depth;
    [ThreadStatic] static AutocastStorage storage;

    public static bool Enabled => depth > 0;

    /// <summary>The storage of autocast operands in the innermost enabled scope.</summary>
    public static AutocastStorage Storage => storage;

    /// <summary>Autocast is on and its operands are BF16 tensors.</summary>
    public static bool StoresBf16 => Enabled && storage == AutocastStorage.Bf16;

    public static IDisposable Bf16(bool enabled = true, AutocastStorage storage = AutocastStorage.RoundedF32)
    {
        if (!enabled) return new Scope(() => { });
        var saved = MixedPrecision.storage;
        depth++;
        MixedPrecision.storage = storage;
        return new Scope(() => { depth--; MixedPrecision.storage = saved; });
    }

    /// <summary>Autocast exactly on or off, with the given storage, until disposed, whatever the enclosing scopes say
    /// (a recomputation in the backward pass repeats the forward's state).</summary>
    public static IDisposable Exactly(bool enabled, AutocastStorage storage)
    {
        var (savedDepth, savedStorage) = (depth, MixedPrecision.storage);
        depth = enabled ? 1 : 0;
        MixedPrecision.storage = storage;
        return new Scope(() => { depth = savedDepth; MixedPrecision.storage = savedStorage; });
    }

    sealed class Scope(Action onDispose) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; onDispose(); } }
    }

    static long masterWeightsVersion;

    /// <summary>Changes whenever <see cref="MasterWeightsChanged"/> is called: the BF16 weight copies made before it
    /// (<see cref="F.AutocastWeight"/>) are stale and are remade on their next use.</summary>
    public static long MasterWeightsVersion => Interlocked.Read(ref masterWeightsVersion);

    /// <summary>Call after writing f32 master weights in place (the optimizer's update, a checkpoint load, an EMA copy):
    /// every cached BF16 weight copy is remade on its next use.</summary>
    public static void MasterWeightsChanged() => Interlocked.Increment(ref masterWeightsVersion);

    /// <summary>x rounded to the nearest bf16 value, kept in f32 storage.</summary>
    public static Tensor RoundToBF16(Tensor x) => Ops.RoundToBF16(x);
}

public static partial class F
{
    /// <summary>Rounds to bf16 (forward and gradient); see <see cref="MixedPrecision"/>. No float64 reference: a
    /// rounding has no useful finite differences, so it is checked by MixedPrecisionTests instead of gradcheck.</summary>
    public static OpDefinition<NoAttributes> CastBF16Op { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("cast_bf16",
        (x, _) => (MixedPrecision.RoundToBF16(x[0]), []), (_, g) => [MixedPrecision.RoundToBF16(g)])
    {
        BenchShapes = [[64, 4096]],
    });

    /// <summary>f32 to a BF16 tensor (forward) and the gradient rounded to bf16 as F32 (backward). The backward never
    /// reads the f32 input, so the node does not keep it alive. Checked by MixedPrecisionTests, like cast_bf16.</summary>
    public static OpDefinition<NoAttributes> ToBF16Op { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("to_bf16",
        (x, _) => (Ops.ToBF16(x[0]), []), (_, g) => [MixedPrecision.RoundToBF16(g)])
    {
        BenchShapes = [[64, 4096]], ReadsInputs = false,
    });

    public static Variable CastBF16(Variable x) => CastBF16Op.Apply(default, x);

    /// <summary>x as a BF16 tensor (see <see cref="ToBF16Op"/>); a BF16 x is returned as is.</summary>
    public static Variable ToBF16(Variable x) => x.Data.DType == DType.BF16 ? x : ToBF16Op.Apply(default, x);

    /// <summary>Inside <see cref="MixedPrecision.Bf16"/>: x as a bf16 operand of conv, linear or attention (a BF16 tensor or
    /// an f32 one holding bf16 values, by <see cref="MixedPrecision.Storage"/>); outside it, x itself.</summary>
    public static Variable Autocast(Variable x) => !MixedPrecision.Enabled ? x : MixedPrecision.StoresBf16 ? ToBF16(x) : CastBF16(x);

    /// <summary>
    /// Autocast of a value the caller's forward does not read again. With BF16 storage the f32 value is freed at once
    /// when it is an op's output that no recorded backward reads (the cast's own backward does not), so only the bf16
    /// copy stays for the backward; otherwise as <see cref="Autocast"/>.
    /// </summary>
    public static Variable AutocastLastUse(Variable x)
    {
        var y = Autocast(x);
        if (MixedPrecision.StoresBf16 && !ReferenceEquals(x, y) && !x.IsLeaf && x.PendingUses == 0 && !x.Kept) x.Data.Dispose();
        return y;
    }

    /// <summary>
    /// Autocast of a weight: as <see cref="Autocast"/>, except that with BF16 storage a leaf's BF16 copy is made once and
    /// reused until <see cref="MixedPrecision.MasterWeightsChanged"/> (once per optimizer step, however many forwards,
    /// recomputations or sampler steps read it; torch's autocast caches its weight casts the same way). The gradient is
    /// rounded to bf16 and reaches the f32 weight as for <see cref="ToBF16Op"/>.
    /// </summary>
    public static Variable AutocastWeight(Variable w)
    {
        if (!MixedPrecision.StoresBf16 || !w.IsLeaf || w.Data.DType != DType.F32) return Autocast(w);
        long version = MixedPrecision.MasterWeightsVersion;
        if (w.Bf16Copy is null || w.Bf16Copy.IsDisposed || !Shape.Equal(w.Bf16Copy.Dims, w.Data.Dims))
        {
            w.Bf16Copy?.Dispose();
            w.Bf16Copy = Ops.ToBF16(w.Data);
            w.Bf16CopyVersion = version;
        }
        else if (w.Bf16CopyVersion != version) { Ops.ToBF16(w.Data, w.Bf16Copy); w.Bf16CopyVersion = version; }
        var y = Record.Op(CachedCastName, w.Bf16Copy, [w], (_, g) => [MixedPrecision.RoundToBF16(g)], readsInputs: false);
        y.Kept = true;   // the copy belongs to the weight, not to the graph
        return y;
    }

    /// <summary>The name <see cref="AutocastWeight"/>'s reuse of a cached copy has in profiles.</summary>
    public const string CachedCastName = "to_bf16_cached";

    /// <summary>Autocast for ops that take f32 operands only (conv1d): the rounded f32 form whatever the storage.</summary>
    public static Variable AutocastRounded(Variable x) => MixedPrecision.Enabled ? CastBF16(x) : x;
}
