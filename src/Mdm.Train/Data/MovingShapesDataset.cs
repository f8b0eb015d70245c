namespace Mdm.Train.Data;

/// <summary>
/// Clips of <see cref="Frames"/> frames, [F, C, H, W] in [−1, 1]: one procedural shape (the classes of
/// <see cref="ShapesDataset"/>, radius 20–35 %, random colours with guaranteed contrast) moving in a straight line at
/// constant velocity, chosen so that it stays fully inside every frame; colours and size fixed per clip. Clip i depends only on (seed, i); label = i mod 6.
/// </summary>
public sealed class MovingShapesDataset : IClipDataset
{
    readonly int[] shape;

    public MovingShapesDataset(int imageSize, int frames, int count = 20_000, long seed = 0, int channels = 3)
    {
        if (imageSize < ShapesDataset.MinImageSize) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, $"shapes need at least {ShapesDataset.MinImageSize} px");
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), frames, "a clip needs at least one frame");
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 or 3");
        (ImageSize, Frames, Count, Seed, Channels) = (imageSize, frames, count, seed, channels);
        shape = [frames, channels, imageSize, imageSize];
    }

    public int Count { get; }
    public int Frames { get; }
    public int ImageSize { get; }
    public int Channels { get; }
    public long Seed { get; }
    public IReadOnlyList<int> SampleShape => shape;
    public int NumClasses => ShapeRenderer.ClassNames.Count;
    public IReadOnlyList<string> ClassNames => ShapeRenderer.ClassNames;

    /// <summary>The shape of clip <paramref name="index"/> in frame <paramref name="frame"/>.</summary>
    public ShapeSpec Spec(int index, int frame)
    {
        DatasetChecks.Index(this, index);
        if ((uint)frame >= (uint)Frames) throw new ArgumentOutOfRangeException(nameof(frame), frame, $"clips have {Frames} frames");
        var rng = SplitMix.For(Seed, index, 1);
        var kind = (ShapeKind)(index % NumClasses);
        double radius = rng.Uniform(0.20, 0.35) * ImageSize;
        // Start and end points anywhere inside; the straight path between them stays inside (the region is convex).
        double x0 = rng.Uniform(radius, ImageSize - radius), y0 = rng.Uniform(radius, ImageSize - radius);
        double x1 = rng.Uniform(radius, ImageSize - radius), y1 = rng.Uniform(radius, ImageSize - radius);
        var (fg, bg) = ShapeRenderer.Colours(ref rng);
        bool horizontal = rng.NextInt(2) == 0;
        double t = Frames == 1 ? 0 : frame / (double)(Frames - 1);
        return new ShapeSpec(kind, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, radius, fg, bg, horizontal);
    }

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Destination(this, destination);
        int frameLength = Channels * ImageSize * ImageSize;
        for (int f = 0; f < Frames; f++)
            ShapeRenderer.Render(Spec(index, f), ImageSize, Channels, destination.Slice(f * frameLength, frameLength));
        return index % NumClasses;
    }
}
