namespace Mdm.Train.Data;

/// <summary>
/// Base of the file-backed image sets: a subclass turns sample i into C × S × S bytes once (decode, composite, crop,
/// resize); the bytes are kept so later epochs cost only the byte → [−1, 1] conversion.
/// </summary>
public abstract class PreparedImageDataset : IImageDataset
{
    readonly byte[]?[] prepared;
    readonly int[] shape;

    protected PreparedImageDataset(int count, int imageSize, int channels, IReadOnlyList<string> classNames)
    {
        if (imageSize <= 0) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "image size must be positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (gray) or 3 (RGB)");
        prepared = new byte[count][];
        (ImageSize, Channels, ClassNames) = (imageSize, channels, classNames);
        shape = [channels, imageSize, imageSize];
    }

    public int Count => prepared.Length;
    public int ImageSize { get; }
    public int Channels { get; }
    public IReadOnlyList<int> SampleShape => shape;
    public int NumClasses => ClassNames.Count;
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Sample <paramref name="index"/> as C × S × S bytes (0..255).</summary>
    protected abstract byte[] Prepare(int index);

    public abstract int LabelOf(int index);

    /// <summary>The prepared bytes of a sample (computed on first use, then kept).</summary>
    public byte[] Bytes(int index)
    {
        DatasetChecks.Index(this, index);
        var bytes = Volatile.Read(ref prepared[index]);
        if (bytes is null)
        {
            bytes = Prepare(index);
            if (bytes.Length != Channels * ImageSize * ImageSize)
                throw new InvalidOperationException($"{GetType().Name}.Prepare({index}) returned {bytes.Length} bytes, expected {Channels * ImageSize * ImageSize}");
            Volatile.Write(ref prepared[index], bytes);   // two threads may both prepare it: same result
        }
        return bytes;
    }

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Destination(this, destination);
        ImageOps.ToSigned(Bytes(index), destination);
        return LabelOf(index);
    }

    /// <summary>RGBA on white → C planes, shorter side resized and centre-cropped to the target size, as bytes.</summary>
    protected byte[] FromRgba(RgbaImage image) => ImageDecoder.Square(image, ImageSize, Channels);
}
