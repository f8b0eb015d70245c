namespace Mdm.Train.Data;

/// <summary>
/// Procedural coloured shapes (circle, square, triangle, ring, cross, stripes) needing no download: sample i is
/// drawn from the stream (seed, i) alone, so the set is identical on every run and machine and any index can be
/// read in any order. Label = i mod 6 (exactly balanced); random colours with guaranteed contrast, radius
/// 25–45 % of the image, random position fully inside, stripes horizontal or vertical. Large, flat, high-contrast
/// shapes: a small diffusion model learns them on a CPU in minutes and the class is easy to see in samples.
/// </summary>
public sealed class ShapesDataset : IImageDataset
{
    public const int MinImageSize = 8;
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
        double radius = rng.Uniform(0.25, 0.45) * ImageSize;
        double cx = rng.Uniform(radius, ImageSize - radius), cy = rng.Uniform(radius, ImageSize - radius);
        var (fg, bg) = ShapeRenderer.Colours(ref rng);
        return new ShapeSpec(kind, cx, cy, radius, fg, bg, Horizontal: rng.NextInt(2) == 0);
    }

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Destination(this, destination);
        var spec = Spec(index);
        ShapeRenderer.Render(spec, ImageSize, Channels, destination);
        return (int)spec.Kind;
    }
}
