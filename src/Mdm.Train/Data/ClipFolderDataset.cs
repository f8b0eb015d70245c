namespace Mdm.Train.Data;

/// <summary>
/// A folder of clips: each sub-folder is one clip whose PNG frames, sorted by file name, are read in order. Clips
/// longer than the model's frame count contribute their first frames; shorter ones are an error naming the folder.
/// Frames are composited on white, centre-cropped and resized like <see cref="ImageFolderDataset"/>. No class labels.
/// </summary>
public sealed class ClipFolderDataset : IClipDataset, IFileDataset
{
    readonly string[][] clips;
    readonly int[] shape;

    ClipFolderDataset(string root, string[][] clips, int frames, int imageSize, int channels)
    {
        Root = root; this.clips = clips; Frames = frames; ImageSize = imageSize; Channels = channels;
        shape = [frames, channels, imageSize, imageSize];
    }

    public static ClipFolderDataset Open(string root, int frames, int imageSize, int channels = 3)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"clip folder '{root}' does not exist");
        var clips = Directory.GetDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.')).OrderBy(d => d, StringComparer.Ordinal)
            .Select(d => Directory.GetFiles(d, "*.png").OrderBy(f => f, StringComparer.Ordinal).ToArray()).ToArray();
        if (clips.Length == 0) throw new DataFormatException(root, "no clip sub-folders (one folder of PNG frames per clip)");
        for (int i = 0; i < clips.Length; i++)
            if (clips[i].Length < frames)
                throw new DataFormatException(root, $"clip '{Path.GetFileName(Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal).ElementAt(i))}' has {clips[i].Length} PNG frames, the model needs {frames}");
        return new ClipFolderDataset(root, clips, frames, imageSize, channels);
    }

    public string Root { get; }
    public int Count => clips.Length;
    public int Frames { get; }
    public int ImageSize { get; }
    public int Channels { get; }
    public IReadOnlyList<int> SampleShape => shape;
    public int NumClasses => 0;
    public IReadOnlyList<string> ClassNames => [];

    public string SourceOf(int index) => Path.GetDirectoryName(clips[index][0]) ?? Root;

    public int LoadInto(int index, Span<float> destination)
    {
        int frameLength = Channels * ImageSize * ImageSize;
        for (int f = 0; f < Frames; f++)
        {
            var image = Png.Load(clips[index][f]);
            var rgb = ImageOps.CompositeRgb(image);
            var planes = Channels == 1 ? ImageOps.ToGray(rgb, image.Height, image.Width) : rgb;
            var resized = ImageOps.CenterCropResize(planes, Channels, image.Height, image.Width, ImageSize);
            ImageOps.ToSigned(ImageOps.ToBytes(resized), destination.Slice(f * frameLength, frameLength));   // 0..255 → −1..1
        }
        return 0;
    }
}
