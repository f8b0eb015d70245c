using System.Formats.Tar;
using Mdm.Model.Checkpoints;

namespace Mdm.Train.Data;

/// <summary>
/// Image + caption + precomputed text embedding in tar shards of the webdataset layout: the files of one sample share
/// a key (the name up to its first dot): <c>key.jpg</c> (or .jpeg/.png/.webp), <c>key.txt</c> (optional caption) and
/// <c>key.emb.safetensors</c> (F32/BF16 <c>tokens</c> [L, D] and <c>mask</c> [L], every sample the same L and D).
/// <c>empty.emb.safetensors</c> beside the first shard is the encoding of the empty caption. Opening reads only the
/// tar headers (an index of offsets); samples are read and decoded on demand, nothing is cached.
/// An epoch visits the shards in an order drawn from (seed, epoch), this rank's share of them (every
/// <c>worldSize</c>-th), through a shuffle buffer of <see cref="ShuffleBuffer"/> samples: a pure function of
/// (seed, epoch, rank), so a resumed run and each data-parallel rank see exactly their samples.
/// </summary>
public sealed class ShardDataset : IImageDataset, IFileDataset, ITextDataset, IEpochOrder
{
    public const string EmptyCaptionFile = "empty.emb.safetensors";

    sealed record Part(long Offset, int Length, string Name);
    sealed record Sample(int Shard, string Key, Part Image, Part Embedding, Part? Caption);

    readonly string[] shards;
    readonly Sample[] samples;
    readonly int[][] samplesOfShard;
    readonly int[] shape;

    public int Count => samples.Length;
    public IReadOnlyList<int> SampleShape => shape;
    public int NumClasses => 0;
    public IReadOnlyList<string> ClassNames => [];
    public int ImageSize { get; }
    public int Channels { get; }
    public int TokenLength { get; }
    public int TextDim { get; }
    public (float[] Tokens, float[] Mask) EmptyCaption { get; }
    public int ShuffleBuffer { get; }
    public int Rank { get; }
    public int WorldSize { get; }
    public IReadOnlyList<string> Shards => shards;

    ShardDataset(string[] shards, Sample[] samples, int imageSize, int channels, int shuffleBuffer, int rank, int worldSize)
    {
        (this.shards, this.samples, ImageSize, Channels, ShuffleBuffer, Rank, WorldSize) = (shards, samples, imageSize, channels, shuffleBuffer, rank, worldSize);
        shape = [channels, imageSize, imageSize];
        samplesOfShard = [.. Enumerable.Range(0, shards.Length).Select(s => Enumerable.Range(0, samples.Length).Where(i => samples[i].Shard == s).ToArray())];
        var first = ReadEmbedding(0);
        (TokenLength, TextDim) = (first.Length, first.Dim);
        var emptyPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(shards[0]))!, EmptyCaptionFile);
        if (!File.Exists(emptyPath))
            throw new DataFormatException(emptyPath, "missing: the encoding of the empty caption (for caption dropout and guidance) is written by tools/make_shards.py");
        var empty = Embedding(File.ReadAllBytes(emptyPath), emptyPath);
        EmptyCaption = (empty.Tokens, empty.Mask);
    }

    /// <param name="pattern">a tar file, a folder of them, a glob in the file name (<c>data/cc-*.tar</c>) or a brace range (<c>data/cc-{000..099}.tar</c>).</param>
    public static ShardDataset Open(string pattern, int imageSize, int channels = 3, int shuffleBuffer = 1000, int rank = 0, int worldSize = 1)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must lie in [0, {worldSize})");
        if (shuffleBuffer < 1) throw new ArgumentOutOfRangeException(nameof(shuffleBuffer), shuffleBuffer, "the shuffle buffer holds at least one sample");
        var shards = ShardPattern.Expand(pattern);
        var samples = new List<Sample>();
        for (int s = 0; s < shards.Length; s++) samples.AddRange(Index(shards[s], s));
        if (samples.Count == 0) throw new DataFormatException(shards.Length == 1 ? shards[0] : pattern, "the shards hold no samples");
        return new ShardDataset(shards, [.. samples], imageSize, channels, shuffleBuffer, rank, worldSize);
    }

    /// <summary>The samples of one shard from its tar headers; the parts of a key must be consecutive, as webdataset writes them.</summary>
    static IEnumerable<Sample> Index(string shard, int shardIndex)
    {
        var parts = new List<(string Key, string Suffix, Part Part)>();
        try
        {
            using var stream = File.OpenRead(shard);
            using var reader = new TarReader(stream);
            while (reader.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                string name = entry.Name, file = Path.GetFileName(name);
                int dot = file.IndexOf('.');
                if (dot <= 0) throw new DataFormatException(shard, $"entry '{name}' has no key.suffix name");
                if (entry.Length > int.MaxValue) throw new DataFormatException(shard, $"entry '{name}' is {entry.Length} bytes, over 2 GiB");
                string key = name[..(name.Length - file.Length + dot)];
                parts.Add((key, file[(dot + 1)..].ToLowerInvariant(), new Part(entry.DataOffset, (int)entry.Length, name)));
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new DataFormatException(shard, $"not a readable tar file ({e.Message})", e);
        }
        foreach (var group in parts.GroupBy(p => p.Key))
        {
            var image = group.FirstOrDefault(p => ImageDecoder.IsImageFile("." + p.Suffix)).Part
                        ?? throw new DataFormatException(shard, $"sample '{group.Key}' has no image ({string.Join(", ", ImageDecoder.Extensions)})");
            var embedding = group.FirstOrDefault(p => p.Suffix == "emb.safetensors").Part
                            ?? throw new DataFormatException(shard, $"sample '{group.Key}' has no {group.Key}.emb.safetensors (run tools/make_shards.py)");
            yield return new Sample(shardIndex, group.Key, image, embedding, group.FirstOrDefault(p => p.Suffix == "txt").Part);
        }
    }

    byte[] Read(Sample sample, Part part)
    {
        var bytes = new byte[part.Length];
        using var stream = new FileStream(shards[sample.Shard], FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        stream.Position = part.Offset;
        stream.ReadExactly(bytes);
        return bytes;
    }

    public string SourceOf(int index) => $"{shards[samples[index].Shard]}:{samples[index].Key}";

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Index(this, index);
        DatasetChecks.Destination(this, destination);
        var sample = samples[index];
        ImageOps.ToSigned(ImageDecoder.DecodeSquare(Read(sample, sample.Image), $"{shards[sample.Shard]}:{sample.Image.Name}", ImageSize, Channels), destination);
        return 0;
    }

    public void LoadText(int index, Span<float> tokens, Span<float> mask)
    {
        DatasetChecks.Index(this, index);
        var e = ReadEmbedding(index);
        if (e.Length != TokenLength || e.Dim != TextDim)
            throw new DataFormatException(SourceOf(index), $"tokens are [{e.Length}, {e.Dim}], the other samples' [{TokenLength}, {TextDim}]");
        e.Tokens.CopyTo(tokens);
        e.Mask.CopyTo(mask);
    }

    public string CaptionOf(int index)
    {
        DatasetChecks.Index(this, index);
        var sample = samples[index];
        return sample.Caption is null ? "" : System.Text.Encoding.UTF8.GetString(Read(sample, sample.Caption)).Trim();
    }

    (float[] Tokens, float[] Mask, int Length, int Dim) ReadEmbedding(int index)
    {
        var sample = samples[index];
        return Embedding(Read(sample, sample.Embedding), $"{shards[sample.Shard]}:{sample.Embedding.Name}");
    }

    static (float[] Tokens, float[] Mask, int Length, int Dim) Embedding(byte[] bytes, string source)
    {
        try
        {
            using var file = SafeTensorsFile.Read(new MemoryStream(bytes), source);
            var t = file.Entry("tokens");
            var m = file.Entry("mask");
            if (t.Dims.Length != 2 || m.Dims.Length != 1 || m.Dims[0] != t.Dims[0] || t.Dims[0] < 1 || t.Dims[1] < 1)
                throw new DataFormatException(source, $"expected tokens [L, D] and mask [L], got [{string.Join(", ", t.Dims.ToArray())}] and [{string.Join(", ", m.Dims.ToArray())}]");
            return (file.ReadF32("tokens"), file.ReadF32("mask"), (int)t.Dims[0], (int)t.Dims[1]);
        }
        catch (Exception e) when (e is CheckpointFormatException or KeyNotFoundException)
        {
            throw new DataFormatException(source, $"not a token embedding ({e.Message})", e);
        }
    }

    public int[] EpochOrder(long seed, int epoch)
    {
        var shardOrder = BatchLoader.Permutation(shards.Length, (long)SplitMix.Mix((ulong)seed ^ 0x53_4841_5244UL /* "SHARD" */), epoch);
        var rng = SplitMix.For(seed, epoch, Rank, 0x4255_4646 /* "BUFF" */);
        var order = new List<int>();
        var buffer = new List<int>(ShuffleBuffer);
        for (int p = Rank; p < shardOrder.Length; p += WorldSize)
            foreach (int sample in samplesOfShard[shardOrder[p]])
            {
                if (buffer.Count < ShuffleBuffer) { buffer.Add(sample); continue; }
                int j = rng.NextInt(buffer.Count);
                order.Add(buffer[j]);
                buffer[j] = sample;
            }
        while (buffer.Count > 0)
        {
            int j = rng.NextInt(buffer.Count);
            order.Add(buffer[j]);
            buffer[j] = buffer[^1];
            buffer.RemoveAt(buffer.Count - 1);
        }
        return [.. order];
    }
}
