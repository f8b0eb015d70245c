namespace Mdm.Model.Diffusion;

/// <summary>quantity = <see cref="OfNoisy"/>·x_t + <see cref="OfPrediction"/>·prediction (per sample and resolution).</summary>
public readonly record struct Conversion(double OfNoisy, double OfPrediction);

/// <summary>quantity = <see cref="OfClean"/>·x0 + <see cref="OfNoise"/>·ε.</summary>
public readonly record struct TargetMix(double OfClean, double OfNoise);

/// <summary>
/// The linear relations between ε, v and x0 at x_t = α·x0 + σ·ε (α = √g, σ = √(1 − g)), v = α·ε − σ·x0:
///   from v:  x̂0 = α·x_t − σ·v̂,          ε̂ = σ·x_t + α·v̂
///   from ε:  x̂0 = (x_t − σ·ε̂)/α,        v̂ = (ε̂ − σ·x_t)/α
///   from x0: ε̂ = (x_t − α·x̂0)/σ,        v̂ = (α·x_t − x̂0)/σ
/// </summary>
public static class Parameterization
{
    /// <summary>Converts a prediction of type <paramref name="from"/> into <paramref name="to"/> at signal variance <paramref name="gamma"/>.</summary>
    public static Conversion Convert(PredictionType from, PredictionType to, double gamma)
    {
        if (from == to) return new(0, 1);
        double a = Math.Sqrt(gamma), s = Math.Sqrt(1 - gamma);
        return (from, to) switch
        {
            (PredictionType.V, PredictionType.X0) => new(a, -s),
            (PredictionType.V, PredictionType.Epsilon) => new(s, a),
            (PredictionType.Epsilon, PredictionType.X0) => new(1 / a, -s / a),
            (PredictionType.Epsilon, PredictionType.V) => new(-s / a, 1 / a),
            (PredictionType.X0, PredictionType.Epsilon) => new(1 / s, -a / s),
            (PredictionType.X0, PredictionType.V) => new(a / s, -1 / s),
            _ => throw new ArgumentException($"Parameterization: unknown conversion {from} → {to}"),
        };
    }

    /// <summary>The true value of <paramref name="quantity"/> as a mix of the clean image and the noise.</summary>
    public static TargetMix Target(PredictionType quantity, double gamma) => quantity switch
    {
        PredictionType.Epsilon => new(0, 1),
        PredictionType.X0 => new(1, 0),
        PredictionType.V => new(-Math.Sqrt(1 - gamma), Math.Sqrt(gamma)),
        _ => throw new ArgumentException($"Parameterization: unknown quantity {quantity}"),
    };
}
