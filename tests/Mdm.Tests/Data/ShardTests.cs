using System.Formats.Tar;
using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

/// <summary>Tar shards in the webdataset layout: the index, decoding, text, the epoch order and resume.</summary>
public class ShardTests
{
    [Test]
    public void ShardsGiveEveryImageTokensAndCaption()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        var written = ShardFixtures.Write(dir.Path, rng, [4, 3, 2]);
        var set = ShardDataset.Open(Path.Combine(dir.Path, "shard-{000..002}.tar"), imageSize: 12);
        Assert.That((set.Count, set.TokenLength, set.TextDim, set.Shards.Count), Is.EqualTo((9, 5, 6, 3)));
        Assert.That(ShardDataset.Open(dir.Path, 12).Count, Is.EqualTo(9), "a folder of shards");
        Assert.That(ShardDataset.Open(Path.Combine(dir.Path, "shard-00?.tar"), 12).Count, Is.EqualTo(9), "a glob");
        var values = new float[3 * 12 * 12];
        var tokens = new float[5 * 6];
        var mask = new float[5];
        for (int i = 0; i < set.Count; i++)
        {
            var w = written[i];
            Assert.That(set.SourceOf(i), Is.EqualTo($"{w.Shard}:{w.Key}"));
            Assert.That(set.CaptionOf(i), Is.EqualTo(w.Caption));
            set.LoadText(i, tokens, mask);
            Assert.That(tokens, Is.EqualTo(w.Tokens), $"tokens of {w.Key}");
            Assert.That(mask, Is.EqualTo(w.Mask), $"mask of {w.Key}");
            Assert.That(set.LoadInto(i, values), Is.EqualTo(0));
            var expected = ImageDecoder.DecodeSquare(ImagePng(w), "reference", 12, 3);
            double meanError = values.Select((v, k) => Math.Abs((v + 1) * 127.5 - expected[k])).Average();
            Assert.That(meanError, Is.LessThan(3.0), $"{w.Key}: the decoded image is the written one{TestSeed.Describe()}");
        }
        Assert.That(set.EmptyCaption.Mask, Is.EqualTo(new[] { 1f, 0, 0, 0, 0 }));
    }

    static byte[] ImagePng(ShardFixtures.Written w)
    {
        var image = new RgbaImage(w.Width, w.Height);
        for (int i = 0; i < w.Width * w.Height; i++)
            (image.Pixels[4 * i], image.Pixels[4 * i + 1], image.Pixels[4 * i + 2], image.Pixels[4 * i + 3]) = (w.Rgb[3 * i], w.Rgb[3 * i + 1], w.Rgb[3 * i + 2], 255);
        return Png.Encode(image);
    }

    [Test]
    public void EpochOrderIsShardOrderThroughABufferPerSeedAndRank()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        ShardFixtures.Write(dir.Path, rng, [3, 3, 3, 3]);
        long seed = rng.NextInt64();
        var whole = ShardDataset.Open(dir.Path, 8, shuffleBuffer: 4);
        var order = whole.EpochOrder(seed, 0);
        Assert.That(order.Order(), Is.EqualTo(Enumerable.Range(0, 12)), "every sample once");
        Assert.That(whole.EpochOrder(seed, 0), Is.EqualTo(order), "a pure function of (seed, epoch)");
        Assert.That(whole.EpochOrder(seed, 1), Is.Not.EqualTo(order), "another epoch, another order");

        var plain = ShardDataset.Open(dir.Path, 8, shuffleBuffer: 1).EpochOrder(seed, 0);
        var shardRuns = plain.Chunk(3).Select(run => run.Select(i => i / 3).Distinct().Single()).ToArray();
        Assert.That(shardRuns.Order(), Is.EqualTo(new[] { 0, 1, 2, 3 }), "buffer 1: whole shards in the shard order");
        Assert.That(plain.Chunk(3).All(run => run.SequenceEqual(run.Order())), "buffer 1: a shard's samples in file order");

        var rank0 = ShardDataset.Open(dir.Path, 8, shuffleBuffer: 4, rank: 0, worldSize: 2).EpochOrder(seed, 0);
        var rank1 = ShardDataset.Open(dir.Path, 8, shuffleBuffer: 4, rank: 1, worldSize: 2).EpochOrder(seed, 0);
        Assert.That(rank0.Intersect(rank1), Is.Empty, "ranks see disjoint shards");
        Assert.That(rank0.Concat(rank1).Order(), Is.EqualTo(Enumerable.Range(0, 12)), "and together every sample");
        Assert.That(rank0.Select(i => i / 3).Distinct().Count(), Is.EqualTo(2), "two whole shards each");
    }

    [Test]
    public void ResumedLoaderYieldsTheSameBatchesAcrossEpochs()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        ShardFixtures.Write(dir.Path, rng, [4, 3, 4]);
        var set = ShardDataset.Open(dir.Path, 8, shuffleBuffer: 3);
        long seed = rng.NextInt64();
        const int batch = 3, total = 9;   // 11 samples: 3 batches an epoch, so 3 epochs
        var original = new List<Batch>();
        using (var loader = new BatchLoader(set, batch, seed, workers: 2)) for (int i = 0; i < total; i++) original.Add(loader.Next());
        Assert.That(original.Select(b => b.Epoch).Distinct(), Is.EqualTo(new[] { 0, 1, 2 }));
        for (int cut = 1; cut < total; cut += 3)
        {
            using var resumed = new BatchLoader(set, batch, seed, startEpoch: original[cut - 1].NextEpoch, startPosition: original[cut - 1].NextPosition, workers: 1);
            for (int i = cut; i < total; i++)
            {
                var (a, b) = (original[i], resumed.Next());
                Assert.That((b.Epoch, b.Position, b.Indices, b.Flipped), Is.EqualTo((a.Epoch, a.Position, a.Indices, a.Flipped)), $"batch {i} after a resume at {cut}{TestSeed.Describe()}");
                Assert.That(b.Values, Is.EqualTo(a.Values), $"batch {i} values");
                Assert.That((b.Tokens, b.TokenMask), Is.EqualTo((a.Tokens, a.TokenMask)), $"batch {i} text");
            }
        }
    }

    [TestCase("no-embedding")]
    [TestCase("no-image")]
    [TestCase("no-empty-caption")]
    [TestCase("not-a-tar")]
    [TestCase("bad-embedding")]
    [TestCase("no-match")]
    public void BadShardsGiveOneLineNamingTheShard(string fault)
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        ShardFixtures.Write(dir.Path, rng, [2]);
        var shard = Path.Combine(dir.Path, "shard-000.tar");
        string pattern = dir.Path;
        switch (fault)
        {
            case "no-embedding" or "no-image" or "bad-embedding":
                using (var tar = new TarWriter(File.Create(shard), TarEntryFormat.Pax))
                {
                    if (fault != "no-image") ShardFixtures.Add(tar, "k.jpg", ImagePng(new ShardFixtures.Written("", "", new byte[12], 2, 2, [], [], "")));
                    if (fault != "no-embedding") ShardFixtures.Add(tar, "k.emb.safetensors", fault == "bad-embedding" ? "not safetensors"u8.ToArray() : ShardFixtures.Embedding([1, 2], [1], 2));
                    ShardFixtures.Add(tar, "k.txt", "a caption"u8.ToArray());
                }
                break;
            case "no-empty-caption": File.Delete(Path.Combine(dir.Path, ShardDataset.EmptyCaptionFile)); break;
            case "not-a-tar": File.WriteAllBytes(shard, new byte[700]); File.WriteAllText(shard, "plain text, not a tar archive at all"); break;
            default: pattern = Path.Combine(dir.Path, "other-*.tar"); break;
        }
        var e = Assert.Throws<DataFormatException>(() => ShardDataset.Open(pattern, 8))!;
        Assert.That(e.Message, Does.Not.Contain("\n"));
        Assert.That(e.Message, fault switch
        {
            "no-embedding" => Does.Contain(shard).And.Contain("sample 'k' has no k.emb.safetensors"),
            "no-image" => Does.Contain(shard).And.Contain("sample 'k' has no image"),
            "bad-embedding" => Does.Contain(shard).And.Contain("k.emb.safetensors").And.Contain("not a token embedding"),
            "no-empty-caption" => Does.Contain(ShardDataset.EmptyCaptionFile).And.Contain("tools/make_shards.py"),
            "not-a-tar" => Does.Contain(shard),
            _ => Does.Contain("no shard files match 'other-*.tar'"),
        });
    }
}
