using Mdm.Train.Cli;
using Mdm.Train.Data;

namespace Mdm.Train.Training;

/// <summary>Turns --data into a dataset at the model's resolution and channel count.</summary>
public static class DatasetFactory
{
    public const string Procedural = "procedural";
    public static readonly string[] BuiltIn = [Procedural, "emoji", "mnist", "fashion-mnist"];

    /// <summary>For a video model (frames &gt; 1): the built-in moving shapes (or `--data moving-shapes`) as clips.</summary>
    public static IDataset Open(string spec, int imageSize, int channels, int frames, long seed, int? maxPerClass = null)
    {
        if (frames <= 1) return Open(spec, imageSize, channels, seed, maxPerClass);
        if (spec.ToLowerInvariant() is Procedural or "moving-shapes")
            return new MovingShapesDataset(imageSize, frames, count: 20_000, seed: seed, channels: channels);
        if (Directory.Exists(spec)) return ClipFolderDataset.Open(spec, frames, imageSize, channels);
        throw new UsageException($"--data {spec}: video models train on clips: 'moving-shapes' (built in) or a folder with one sub-folder of PNG frames per clip");
    }

    public const string ShardsPrefix = "shards:";

    public static IImageDataset Open(string spec, int imageSize, int channels, long seed, int? maxPerClass = null)
    {
        if (spec.StartsWith(ShardsPrefix, StringComparison.Ordinal))
            return ShardDataset.Open(spec[ShardsPrefix.Length..], imageSize, channels);
        IImageDataset set = spec.ToLowerInvariant() switch
        {
            Procedural => new ShapesDataset(imageSize, count: 60_000, seed: seed, channels: channels),
            "emoji" => EmojiDataset.Open(null, imageSize, channels: channels),
            "fashion-mnist" => IdxDataset.FashionMnist(null, train: true, imageSize: imageSize),
            "mnist" => IdxDataset.Mnist("data/mnist", train: true, imageSize: imageSize),
            _ when Directory.Exists(spec) => ImageFolderDataset.Open(spec, imageSize, channels, maxPerClass),
            _ => throw new UsageException($"--data: '{spec}' is neither a built-in set ({string.Join(", ", BuiltIn)}) nor an existing folder of images"),
        };
        if (set.Channels != channels)
            throw new UsageException($"--data {spec}: the images have {set.Channels} channel(s) but the model expects {channels} (set model.imageChannels in the config)");
        if (set.ImageSize != imageSize)
            throw new UsageException($"--data {spec}: images are {set.ImageSize}² but the model expects {imageSize}²");
        return set;
    }
}
