namespace Mdm.Model.Diffusion;

/// <summary>The base noise schedule (ml-mdm <c>schedule_type</c>; its declared but unwired SIGMOID is rejected).</summary>
public enum ScheduleType
{
    /// <summary>iDDPM cosine ("squaredcos_cap_v2"), β capped at 0.999: what every shipped config uses.</summary>
    DeepFloyd,
    /// <summary>logSNR linear in angle between logSNR 5 and −5.</summary>
    Cosine,
    /// <summary>Linear β from 1e-4 to 0.02 (Ho et al.).</summary>
    Ddpm,
}

/// <summary>What a network output (or a loss target) means: ε (ml-mdm "DDPM"), v (V_PREDICTION) or the clean image x0.</summary>
public enum PredictionType { Epsilon, V, X0 }

/// <summary>
/// The diffusion settings of ml-mdm's <c>diffusion_config</c>, JSON in camelCase (see <see cref="DiffusionConfigJson"/>).
/// The ratio lists are ordered high → low resolution like the denoiser's streams. <see cref="MultiResWeights"/> and
/// <see cref="MixedRatio"/> live here: the shipped 256/1024 YAMLs put them at the top level, where ml-mdm never read them.
/// </summary>
public sealed record DiffusionConfig
{
    /// <summary>N: the gamma table has N + 1 entries, training draws t in [0, N).</summary>
    public int NumDiffusionSteps { get; init; } = 1000;
    public ScheduleType ScheduleType { get; init; } = ScheduleType.DeepFloyd;
    /// <summary>Per-resolution SNR shift SNR_r = SNR / s_r^p (true in all nested configs). When false, every stream uses
    /// the base gammas and a stream's clean image is divided by its scale s_r instead (signal rescaling).</summary>
    public bool ScheduleShifted { get; init; } = true;
    /// <summary>p of the shift: 1 in the 256 config, 2 in the 1024 config.</summary>
    public double ScheduleShiftedPower { get; init; } = 1;
    public PredictionType PredictionType { get; init; } = PredictionType.V;
    /// <summary>The quantity the MSE compares; ε with v-prediction is the v-MSE weighted by g_r.</summary>
    public PredictionType LossTargetType { get; init; } = PredictionType.Epsilon;
    /// <summary>All resolutions contribute to the loss; when false only the highest does (the others weigh 0).</summary>
    public bool UseDoubleLoss { get; init; } = true;
    /// <summary>w_r per resolution ("16:4:1"); null = all 1. Needs <see cref="UseDoubleLoss"/>.</summary>
    public IReadOnlyList<double>? MultiResWeights { get; init; }
    /// <summary>Mixed-resolution batches ("2:1"): resolution r trains only the first ⌊m_r·B⌋ samples, m the cumulative
    /// fractions of these parts; null = every resolution trains every sample.</summary>
    public IReadOnlyList<double>? MixedRatio { get; init; }

    /// <summary>Checks what can be checked without a model; throws ArgumentException naming the field.</summary>
    public DiffusionConfig Validate()
    {
        if (NumDiffusionSteps < 2)
            throw new ArgumentException($"DiffusionConfig.numDiffusionSteps must be at least 2, got {NumDiffusionSteps}");
        if (!Enum.IsDefined(ScheduleType))
            throw new ArgumentException($"DiffusionConfig.scheduleType: unknown value {(int)ScheduleType}");
        if (!Enum.IsDefined(PredictionType) || !Enum.IsDefined(LossTargetType))
            throw new ArgumentException($"DiffusionConfig: unknown predictionType {PredictionType} or lossTargetType {LossTargetType}");
        if (!(ScheduleShiftedPower > 0) || double.IsInfinity(ScheduleShiftedPower))
            throw new ArgumentException($"DiffusionConfig.scheduleShiftedPower must be positive and finite, got {ScheduleShiftedPower}");
        if (MultiResWeights is not null)
        {
            CheckRatios("multiResWeights", MultiResWeights, allowZero: true);
            if (!UseDoubleLoss)
                throw new ArgumentException($"DiffusionConfig.multiResWeights ({Format(MultiResWeights)}) needs useDoubleLoss: without it only the highest resolution contributes");
        }
        if (MixedRatio is not null) CheckRatios("mixedRatio", MixedRatio, allowZero: false);
        return this;
    }

    /// <summary>Validate, then check the ratio lists against a denoiser with <paramref name="resolutions"/> streams.</summary>
    public DiffusionConfig ValidateFor(int resolutions)
    {
        Validate();
        if (resolutions < 1) throw new ArgumentException($"DiffusionConfig: a denoiser needs at least one resolution, got {resolutions}");
        if (MultiResWeights is not null && MultiResWeights.Count != resolutions)
            throw new ArgumentException($"DiffusionConfig.multiResWeights has {MultiResWeights.Count} entries ({Format(MultiResWeights)}), the denoiser has {resolutions} resolutions");
        if (MixedRatio is not null && MixedRatio.Count != resolutions)
            throw new ArgumentException($"DiffusionConfig.mixedRatio has {MixedRatio.Count} entries ({Format(MixedRatio)}), the denoiser has {resolutions} resolutions");
        return this;
    }

    /// <summary>w_r for <paramref name="resolutions"/> streams, with use_double_loss applied (zeros below the highest).</summary>
    public double[] LossWeights(int resolutions)
    {
        ValidateFor(resolutions);
        var w = new double[resolutions];
        for (int r = 0; r < resolutions; r++)
            w[r] = !UseDoubleLoss && r > 0 ? 0 : MultiResWeights?[r] ?? 1;
        return w;
    }

    /// <summary>The cumulative fractions m_r of <see cref="MixedRatio"/> ("2:1" → [2/3, 1]); all 1 without it.</summary>
    public double[] MixedFractions(int resolutions)
    {
        ValidateFor(resolutions);
        var m = new double[resolutions];
        if (MixedRatio is null) { Array.Fill(m, 1.0); return m; }
        double total = MixedRatio.Sum(), running = 0;
        for (int r = 0; r < resolutions; r++)
        {
            running += MixedRatio[r];
            m[r] = r == resolutions - 1 ? 1.0 : running / total;
        }
        return m;
    }

    static void CheckRatios(string field, IReadOnlyList<double> values, bool allowZero)
    {
        if (values.Count == 0) throw new ArgumentException($"DiffusionConfig.{field} is empty");
        foreach (double v in values)
            if (!double.IsFinite(v) || v < 0 || (!allowZero && v == 0))
                throw new ArgumentException($"DiffusionConfig.{field} ({Format(values)}): every entry must be finite and {(allowZero ? "non-negative" : "positive")}, got {v}");
        if (values.All(v => v == 0)) throw new ArgumentException($"DiffusionConfig.{field} ({Format(values)}) is all zeros");
    }

    internal static string Format(IReadOnlyList<double> values) => string.Join(":", values.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
}
