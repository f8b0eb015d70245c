namespace Mdm.Train.Data;

/// <summary>
/// Procedural coloured shapes (circle, square, triangle, ring, cross, stripes) needing no download: sample i is
/// drawn from the stream (seed, i) alone, so the set is identical on every run and machine and any index can be
/// read in any order. Label = i mod 6 (exactly balanced); exactly centred, the bounding box's half side 36–40 % of
/// the image, stripes horizontal or vertical; a bright foreground from <see cref="Foregrounds"/> on a dark background
/// from <see cref="Backgrounds"/>. Large, centred, flat, high-contrast shapes of nearly one size and few colours: a
/// small diffusion model spends its few CPU minutes on the outline, and the class is easy to see in samples.
/// </summary>
public sealed class ShapesDataset : IImageDataset
{
    public const int MinImageSize = 8;
    public const double MinRadius = 0.36, MaxRadius = 0.40;

    /// <summary>Light colours: white, yellow, cyan.</summary>
    public static readonly IReadOnlyList<(byte R, byte G, byte B)> Foregrounds = [(245, 245, 245), (245, 230, 50), (80, 210, 250)];

    /// <summary>Dark navy; every foreground stands out from it.</summary>
    public static readonly IReadOnlyList<(byte R, byte G, byte B)> Backgrounds = [(20, 25, 80)];

    readonly int[] shape;

    public ShapesDataset(int imageSize, int count = 60_000, long seed = 0, int channels = 3)
    {
        if (imageSize < MinImageSize) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, $"shapes need at least {MinImageSize} px");
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 or 3");
        (ImageSize, Count, Seed, Channels) = (imageSize, count, seed, channels);
        shape = [channels, imageSize, imageSize];
    }

    public int Count { get; }
    public int ImageSize { get; }
    public int Channels { get; }
    public long Seed { get; }
    public IReadOnlyList<int> SampleShape => shape;
    public int NumClasses => ShapeRenderer.ClassNames.Count;
    public IReadOnlyList<string> ClassNames => ShapeRenderer.ClassNames;

    /// <summary>The shape drawn for sample <paramref name="index"/>.</summary>
    public ShapeSpec Spec(int index)
    {
        DatasetChecks.Index(this, index);
        var rng = SplitMix.For(Seed, index);
        var kind = (ShapeKind)(index % NumClasses);
        double radius = rng.Uniform(MinRadius, MaxRadius) * ImageSize;
        double centre = ImageSize / 2.0;
        var fg = Foregrounds[rng.NextInt(Foregrounds.Count)];
        var bg = Backgrounds[rng.NextInt(Backgrounds.Count)];
        return new ShapeSpec(kind, centre, centre, radius, fg, bg, Horizontal: rng.NextInt(2) == 0);
    }

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Destination(this, destination);
        var spec = Spec(index);
        ShapeRenderer.Render(spec, ImageSize, Channels, destination);
        return (int)spec.Kind;
    }
}
