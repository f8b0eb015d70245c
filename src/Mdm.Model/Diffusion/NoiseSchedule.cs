namespace Mdm.Model.Diffusion;

/// <summary>
/// The discrete gamma table of ml-mdm (gammas[0] = 1, gammas[1..N] from the schedule; gamma = ᾱ, the signal variance)
/// in float64, and the per-resolution shift: stream r of scale s_r (its size over the lowest stream's) sees
/// logSNR_r = logSNR − p·ln s_r, i.e. g_r = 1 / (1 + 1/(SNR / s_r^p)). Without <c>scheduleShifted</c> every stream uses
/// the base gammas and its clean image is divided by s_r (<see cref="SignalScale"/>).
/// </summary>
public sealed class NoiseSchedule
{
    readonly double[] gammas;
    readonly double[] scales;

    /// <param name="resolutions">Image sizes of the streams, high → low (a denoiser's <see cref="IDenoiser.Resolutions"/>).</param>
    public NoiseSchedule(DiffusionConfig config, IReadOnlyList<int> resolutions)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(resolutions);
        config.ValidateFor(resolutions.Count);
        Config = config;
        gammas = BaseGammas(config.ScheduleType, config.NumDiffusionSteps);
        scales = Scales(resolutions);
        Resolutions = resolutions.ToArray();
    }

    public DiffusionConfig Config { get; }
    public IReadOnlyList<int> Resolutions { get; }
    /// <summary>N; the table has N + 1 entries.</summary>
    public int NumSteps => gammas.Length - 1;
    public IReadOnlyList<double> Gammas => gammas;
    /// <summary>s_r = Resolutions[r] / Resolutions[^1] (e.g. [16, 4, 1] for 1024 → 256 → 64).</summary>
    public IReadOnlyList<double> ResolutionScales => scales;

    /// <summary>gammas[index] of the base (unshifted) table.</summary>
    public double Gamma(int index) => gammas[CheckIndex(index)];

    public double LogSnr(int index) => LogSnrOf(Gamma(index));

    /// <summary>The gamma stream <paramref name="resolution"/> sees at table index <paramref name="index"/>.</summary>
    public double Gamma(int index, int resolution)
    {
        double g = Gamma(index);
        return Config.ScheduleShifted ? Shift(g, scales[CheckResolution(resolution)], Config.ScheduleShiftedPower) : g;
    }

    /// <summary>What the clean image of a stream is divided by: s_r without the shift, 1 with it.</summary>
    public double SignalScale(int resolution) => Config.ScheduleShifted ? 1.0 : scales[CheckResolution(resolution)];

    /// <summary>logSNR = ln(g / (1 − g)); +∞ at g = 1.</summary>
    public static double LogSnrOf(double gamma) => gamma >= 1 ? double.PositiveInfinity : Math.Log(gamma) - Math.Log(1 - gamma);

    /// <summary>g / s^p in SNR: g' = 1 / (1 + 1/(SNR/s^p)), computed as sigmoid(logSNR − p·ln s) so it stays exact near 0 and 1.</summary>
    public static double Shift(double gamma, double scale, double power)
    {
        if (!(scale > 0)) throw new ArgumentException($"NoiseSchedule.Shift: scale must be positive, got {scale}");
        if (gamma >= 1) return 1;
        if (gamma <= 0) return 0;
        double l = LogSnrOf(gamma) - power * Math.Log(scale);
        return l >= 0 ? 1 / (1 + Math.Exp(-l)) : Math.Exp(l) / (1 + Math.Exp(l));
    }

    /// <summary>The N + 1 base gammas of <paramref name="type"/> (§3.1 of the reference), gammas[0] = 1.</summary>
    public static double[] BaseGammas(ScheduleType type, int n)
    {
        if (n < 2) throw new ArgumentException($"NoiseSchedule: need at least 2 diffusion steps, got {n}");
        var g = new double[n + 1];
        g[0] = 1;
        switch (type)
        {
            case ScheduleType.DeepFloyd:
            {
                // iDDPM squaredcos_cap_v2: β_i = min(1 − ab(i/N)/ab((i−1)/N), 0.999), g_i = Π(1 − β_j).
                static double Ab(double tau) { double c = Math.Cos((tau + 0.008) / 1.008 * Math.PI / 2); return c * c; }
                for (int i = 1; i <= n; i++)
                {
                    double beta = Math.Min(1 - Ab((double)i / n) / Ab((double)(i - 1) / n), 0.999);
                    g[i] = g[i - 1] * (1 - beta);
                }
                break;
            }
            case ScheduleType.Cosine:
            {
                // logSNR linear in angle: λ(τ) = −2 ln tan(a·τ + b) from λmax = 5 at τ = 0 to λmin = −5 at τ = 1.
                const double logSnrMin = -5, logSnrMax = 5;
                double b = Math.Atan(Math.Exp(-logSnrMax / 2)), a = Math.Atan(Math.Exp(-logSnrMin / 2)) - b;
                for (int i = 1; i <= n; i++)
                {
                    double tau = (double)(i - 1) / (n - 1);   // linspace(0, 1, N)
                    double lambda = -2 * Math.Log(Math.Tan(a * tau + b));
                    g[i] = 1 / (1 + Math.Exp(-lambda));
                }
                break;
            }
            case ScheduleType.Ddpm:
                for (int i = 1; i <= n; i++)
                {
                    double beta = 1e-4 + (0.02 - 1e-4) * (i - 1) / (n - 1);   // linspace(1e-4, 0.02, N)
                    g[i] = g[i - 1] * (1 - beta);
                }
                break;
            default:
                throw new ArgumentException($"NoiseSchedule: unknown schedule type {type}");
        }
        return g;
    }

    /// <summary>s_r = R_r / R_lowest; each size must divide the one above it (the average-pool pyramid).</summary>
    public static double[] Scales(IReadOnlyList<int> resolutions)
    {
        if (resolutions.Count == 0) throw new ArgumentException("NoiseSchedule: the denoiser has no resolutions");
        for (int r = 0; r < resolutions.Count; r++)
        {
            if (resolutions[r] < 1) throw new ArgumentException($"NoiseSchedule: resolution {r} is {resolutions[r]} (resolutions {string.Join(",", resolutions)})");
            if (r > 0 && (resolutions[r] > resolutions[r - 1] || resolutions[r - 1] % resolutions[r] != 0))
                throw new ArgumentException($"NoiseSchedule: resolutions must go high → low, each dividing the one before, got {string.Join(",", resolutions)}");
        }
        return resolutions.Select(r => (double)r / resolutions[^1]).ToArray();
    }

    int CheckIndex(int index) =>
        index >= 0 && index < gammas.Length ? index
            : throw new ArgumentOutOfRangeException(nameof(index), $"NoiseSchedule: gamma index {index} outside [0, {gammas.Length - 1}]");

    int CheckResolution(int resolution) =>
        resolution >= 0 && resolution < scales.Length ? resolution
            : throw new ArgumentOutOfRangeException(nameof(resolution), $"NoiseSchedule: resolution index {resolution} outside [0, {scales.Length - 1}]");
}
