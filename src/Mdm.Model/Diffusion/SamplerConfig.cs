namespace Mdm.Model.Diffusion;

/// <summary>
/// How to sample (JSON camelCase, see <see cref="DiffusionConfigJson"/>). The demo presets of ml-mdm are 50 / 100 / 250
/// steps with η = 0 / 0 / 1, guidance 7.5 and DYNAMIC_IF thresholding.
/// </summary>
public sealed record SamplerConfig
{
    /// <summary>K respaced transitions; null = every step of the schedule (K = N).</summary>
    public int? NumSteps { get; init; }
    /// <summary>η of DDIM (0 = deterministic, 1 = ancestral); null = the DDPM posterior.</summary>
    public double? DdimEta { get; init; }
    public ThresholdType Threshold { get; init; } = ThresholdType.Clip;
    /// <summary>Classifier-free guidance weight w (pred = u + w·(c − u)); null = no guidance (a single batch).</summary>
    public double? GuidanceScale { get; init; }

    public SamplerConfig Validate()
    {
        if (NumSteps is < 1) throw new ArgumentException($"SamplerConfig.numSteps must be at least 1, got {NumSteps}");
        if (DdimEta is { } eta && (!double.IsFinite(eta) || eta < 0))
            throw new ArgumentException($"SamplerConfig.ddimEta must be finite and >= 0, got {eta}");
        if (!Enum.IsDefined(Threshold)) throw new ArgumentException($"SamplerConfig.threshold: unknown value {(int)Threshold}");
        if (GuidanceScale is { } w && !double.IsFinite(w))
            throw new ArgumentException($"SamplerConfig.guidanceScale must be finite, got {w}");
        return this;
    }
}
