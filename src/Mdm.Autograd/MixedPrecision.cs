using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// bf16 autocast (ml-mdm's fp16=1 = torch.autocast(dtype=bfloat16)): inside <see cref="Bf16"/>, layers pass the
/// operands of matmuls, convolutions and attention through <see cref="F.Autocast"/>, which rounds them to bf16
/// (round to nearest even) while products still accumulate in f32; their gradients are rounded to bf16 as autocast's
/// cast does. Norms, softmax, upsampling, losses and the optimizer's f32 master weights are untouched. The values are
/// exactly those of bf16-storage kernels with f32 accumulation; the memory and speed gains need the bf16 kernels.
/// </summary>
public static class MixedPrecision
{
    [ThreadStatic] static int depth;

    public static bool Enabled => depth > 0;

    public static IDisposable Bf16(bool enabled = true)
    {
        if (!enabled) return new Scope(() => { });
        depth++;
        return new Scope(() => depth--);
    }

    /// <summary>Autocast exactly on or off until disposed, whatever the enclosing scopes say (a recomputation in the
    /// backward pass repeats the forward's state).</summary>
    public static IDisposable Exactly(bool enabled)
    {
        int saved = depth;
        depth = enabled ? 1 : 0;
        return new Scope(() => depth = saved);
    }

    sealed class Scope(Action onDispose) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; onDispose(); } }
    }

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

    public static Variable CastBF16(Variable x) => CastBF16Op.Apply(default, x);

    /// <summary>x cast to bf16 when inside <see cref="MixedPrecision.Bf16"/>, else x itself.</summary>
    public static Variable Autocast(Variable x) => MixedPrecision.Enabled ? CastBF16(x) : x;
}
