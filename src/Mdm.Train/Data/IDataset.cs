namespace Mdm.Train.Data;

/// <summary>One sample: float values in [−1, 1] laid out as the dataset's <see cref="IDataset.SampleShape"/>, and its class.</summary>
public readonly record struct DatasetItem(float[] Values, int Label);

/// <summary>
/// A labelled, randomly accessible set of fixed-shape samples. <see cref="LoadInto"/> must be safe to call from
/// several threads at once (the batch loader loads the samples of a batch in parallel) and deterministic per index.
/// </summary>
public interface IDataset
{
    int Count { get; }

    /// <summary>[C, H, W] for images, [F, C, H, W] for clips.</summary>
    IReadOnlyList<int> SampleShape { get; }

    int NumClasses { get; }

    /// <summary>The name of each class label 0..NumClasses−1.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Writes sample <paramref name="index"/> (values in [−1, 1]) into <paramref name="destination"/> and returns its label.</summary>
    int LoadInto(int index, Span<float> destination);

    int SampleLength
    {
        get
        {
            int n = 1;
            foreach (int d in SampleShape) n *= d;
            return n;
        }
    }

    DatasetItem Load(int index)
    {
        var values = new float[SampleLength];
        return new DatasetItem(values, LoadInto(index, values));
    }
}

/// <summary>Square images, float [C, H, W] with C = 1 (gray) or 3 (RGB).</summary>
public interface IImageDataset : IDataset
{
    int ImageSize { get; }
    int Channels { get; }
}

/// <summary>Clips of <see cref="Frames"/> square frames, float [F, C, H, W].</summary>
public interface IClipDataset : IDataset
{
    int Frames { get; }
    int ImageSize { get; }
    int Channels { get; }
}

static class DatasetChecks
{
    public static void Index(IDataset set, int index)
    {
        if ((uint)index >= (uint)set.Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"dataset has {set.Count} samples");
    }

    public static void Destination(IDataset set, Span<float> destination)
    {
        if (destination.Length != set.SampleLength)
            throw new ArgumentException($"destination holds {destination.Length} values, a sample [{string.Join(", ", set.SampleShape)}] needs {set.SampleLength}");
    }
}
