using System.Formats.Tar;
using Mdm.Model.Checkpoints;
using Mdm.Train.Data;
using NetVips;

namespace Mdm.Tests.Data;

/// <summary>Writes webdataset tar shards as tools/make_shards.py does: key.{jpg,png,webp}, key.txt, key.emb.safetensors.</summary>
static class ShardFixtures
{
    public sealed record Written(string Shard, string Key, byte[] Rgb, int Width, int Height, float[] Tokens, float[] Mask, string Caption);

    static readonly string[] Formats = [".jpg", ".png", ".webp"];

    public static byte[] Embedding(float[] tokens, float[] mask, int dim) =>
        new SafeTensorsWriter().AddF32("tokens", [mask.Length, dim], tokens).AddF32("mask", [mask.Length], mask).ToArray();

    /// <summary>Shards with the given sample counts (each sample a random smooth image and random tokens), plus the empty caption file.</summary>
    public static List<Written> Write(string dir, Random rng, int[] samplesPerShard, int tokenLength = 5, int dim = 6)
    {
        Directory.CreateDirectory(dir);
        var written = new List<Written>();
        int serial = 0;
        for (int s = 0; s < samplesPerShard.Length; s++)
        {
            var shard = Path.Combine(dir, $"shard-{s:D3}.tar");
            using var tar = new TarWriter(File.Create(shard), TarEntryFormat.Pax);
            for (int i = 0; i < samplesPerShard[s]; i++, serial++)
            {
                string key = $"{serial:D6}", ext = Formats[serial % Formats.Length];
                int w = rng.Next(18, 30), h = rng.Next(18, 30);
                var rgb = ImageDecoderTests.SmoothRgb(rng, w, h);
                using var image = Image.NewFromMemory(rgb, w, h, 3, Enums.BandFormat.Uchar);
                var imageBytes = ext == ".png" ? Png.Encode(ToRgba(rgb, w, h)) : image.WriteToBuffer(ext, new VOption { { "Q", 95 } });
                int real = rng.Next(1, tokenLength + 1);
                var mask = Enumerable.Range(0, tokenLength).Select(t => t < real ? 1f : 0f).ToArray();
                var tokens = Enumerable.Range(0, tokenLength * dim).Select(t => t / dim < real ? (float)(rng.NextDouble() * 2 - 1) : 0f).ToArray();
                string caption = $"caption {serial}";
                Add(tar, key + ext, imageBytes);
                Add(tar, key + ".txt", System.Text.Encoding.UTF8.GetBytes(caption));
                Add(tar, key + ".emb.safetensors", Embedding(tokens, mask, dim));
                written.Add(new Written(shard, key, rgb, w, h, tokens, mask, caption));
            }
        }
        File.WriteAllBytes(Path.Combine(dir, ShardDataset.EmptyCaptionFile),
                           Embedding(new float[tokenLength * dim], [1f, .. new float[tokenLength - 1]], dim));
        return written;
    }

    public static void Add(TarWriter tar, string name, byte[] bytes) =>
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });

    static RgbaImage ToRgba(byte[] rgb, int w, int h)
    {
        var image = new RgbaImage(w, h);
        for (int i = 0; i < w * h; i++) (image.Pixels[4 * i], image.Pixels[4 * i + 1], image.Pixels[4 * i + 2], image.Pixels[4 * i + 3]) = (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255);
        return image;
    }
}
