using Mdm.Tests.Harness;
using Mdm.Train.Data;
using Mdm.Train.Output;

namespace Mdm.Tests.Video;

/// <summary>The GIF89a writer, read back by an independent decoder written here (LZW decode, extensions, tables).</summary>
public class GifTests
{
    Random Rng = null!;
    [SetUp] public void FreshSeed() => Rng = TestSeed.NewRandom();

    sealed record Decoded(int Width, int Height, int? LoopCount, List<(int Delay, byte[] Rgb)> Frames);

    /// <summary>A minimal GIF decoder: header, screen descriptor, global/local tables, NETSCAPE2.0, graphic control,
    /// image data (LZW with clear codes, 12-bit cap, the KwKwK case), trailer.</summary>
    static Decoded Decode(byte[] gif)
    {
        int at = 0;
        byte U8() => gif[at++];
        int U16() { int v = gif[at] | gif[at + 1] << 8; at += 2; return v; }
        Assert.That(System.Text.Encoding.ASCII.GetString(gif, 0, 6), Is.EqualTo("GIF89a"), "header");
        at = 6;
        int width = U16(), height = U16(), packed = U8();
        at += 2;
        byte[]? global = null;
        if ((packed & 0x80) != 0) { int n = 3 << ((packed & 7) + 1); global = gif[at..(at + n)]; at += n; }
        int? loop = null;
        int delay = 0;
        var frames = new List<(int, byte[])>();
        while (true)
        {
            int block = U8();
            if (block == 0x3B) { Assert.That(at, Is.EqualTo(gif.Length), "trailer is the last byte"); break; }
            if (block == 0x21)
            {
                int label = U8();
                var data = SubBlocks(gif, ref at, out var first);
                if (label == 0xFF && System.Text.Encoding.ASCII.GetString(first) == "NETSCAPE2.0") loop = data[12] | data[13] << 8;   // "NETSCAPE2.0", then sub-block [1, lo, hi]
                if (label == 0xF9) delay = first[1] | first[2] << 8;
                continue;
            }
            Assert.That(block, Is.EqualTo(0x2C), $"unexpected block 0x{block:X2} at byte {at - 1}");
            int left = U16(), top = U16(), w = U16(), h = U16(), flags = U8();
            Assert.That((left, top, w, h), Is.EqualTo((0, 0, width, height)));
            var table = global;
            if ((flags & 0x80) != 0) { int n = 3 << ((flags & 7) + 1); table = gif[at..(at + n)]; at += n; }
            int minCode = U8();
            var indices = LzwDecode(SubBlocks(gif, ref at, out _), minCode, w * h);
            var rgb = new byte[w * h * 3];
            for (int i = 0; i < indices.Length; i++) Array.Copy(table!, 3 * indices[i], rgb, 3 * i, 3);
            frames.Add((delay, rgb));
        }
        return new Decoded(width, height, loop, frames);
    }

    static byte[] SubBlocks(byte[] gif, ref int at, out byte[] first)
    {
        var all = new List<byte>();
        first = [];
        bool isFirst = true;
        for (int n; (n = gif[at++]) != 0; at += n)
        {
            var chunk = gif[at..(at + n)];
            if (isFirst) { first = chunk; isFirst = false; }
            all.AddRange(chunk);
        }
        return all.ToArray();
    }

    static byte[] LzwDecode(byte[] data, int minCode, int pixels)
    {
        int clear = 1 << minCode, end = clear + 1, size = minCode + 1, bitPos = 0;
        var dict = new List<byte[]>();
        void Reset() { dict.Clear(); for (int i = 0; i < clear + 2; i++) dict.Add(i < clear ? [(byte)i] : []); size = minCode + 1; }
        Reset();
        var output = new List<byte>();
        byte[]? previous = null;
        while (true)
        {
            Assert.That(bitPos + size, Is.LessThanOrEqualTo(data.Length * 8), "LZW data ended without an end code");
            int code = 0;
            for (int b = 0; b < size; b++, bitPos++) code |= ((data[bitPos >> 3] >> (bitPos & 7)) & 1) << b;
            if (code == clear) { Reset(); previous = null; continue; }
            if (code == end) break;
            byte[] entry;
            if (code < dict.Count) entry = dict[code];
            else
            {
                Assert.That(code, Is.EqualTo(dict.Count), "LZW code beyond the next free code");
                Assert.That(previous, Is.Not.Null, "KwKwK code right after a clear");
                entry = [.. previous!, previous![0]];
            }
            output.AddRange(entry);
            if (previous is not null && dict.Count < 4096)
            {
                dict.Add([.. previous, entry[0]]);
                if (dict.Count == 1 << size && size < 12) size++;
            }
            previous = entry;
        }
        Assert.That(output.Count, Is.EqualTo(pixels), "decoded pixel count");
        return output.ToArray();
    }

    static RgbaImage RandomImage(Random rng, int w, int h, int levels)
    {
        var img = new RgbaImage(w, h);
        for (int i = 0; i < img.Pixels.Length; i += 4)
        {
            for (int c = 0; c < 3; c++) img.Pixels[i + c] = (byte)(levels >= 256 ? rng.Next(256) : rng.Next(levels) * (255 / Math.Max(1, levels - 1)));
            img.Pixels[i + 3] = 255;
        }
        return img;
    }

    static byte[] Rgb(RgbaImage img) => img.Pixels.Where((_, i) => i % 4 != 3).ToArray();

    [TestCase(GifPalette.Global)]
    [TestCase(GifPalette.PerFrame)]
    public void FewColoursRoundTripExactlyWithLoopAndDelays(GifPalette palette)
    {
        // 3 levels per channel = 27 colours ≤ 256: the exact palette, so pixels come back unchanged.
        var frames = Enumerable.Range(0, 4).Select(_ => RandomImage(Rng, 37, 23, 3)).ToList();
        var gif = Gif.Encode(frames, delayCentiseconds: 7, loopCount: 3, palette: palette);
        Assert.That(gif[^1], Is.EqualTo(0x3B), "trailer");
        var d = Decode(gif);
        Assert.That((d.Width, d.Height, d.LoopCount, d.Frames.Count), Is.EqualTo((37, 23, (int?)3, 4)));
        for (int f = 0; f < 4; f++)
        {
            Assert.That(d.Frames[f].Delay, Is.EqualTo(7), $"delay of frame {f}");
            Assert.That(d.Frames[f].Rgb, Is.EqualTo(Rgb(frames[f])), $"frame {f} pixels\n{TestSeed.Describe()}");
        }
    }

    [Test]
    public void ManyColoursUseTheColourCubeAndFillTheLzwTable()
    {
        // Random 8-bit noise: > 256 colours → 6×7×6 cube; 160×120 incompressible pixels overflow the 4096-code table
        // several times, so clear codes and the 12-bit cap are exercised.
        var frames = new List<RgbaImage> { RandomImage(Rng, 160, 120, 256), RandomImage(Rng, 160, 120, 256) };
        var d = Decode(Gif.Encode(frames, delayCentiseconds: 10));
        Assert.That(d.LoopCount, Is.EqualTo(0), "loop forever");
        for (int f = 0; f < frames.Count; f++)
        {
            var src = Rgb(frames[f]);
            var expected = new byte[src.Length];
            for (int i = 0; i < src.Length; i++)
            {
                double step = i % 3 == 1 ? 42.5 : 51.0;
                expected[i] = (byte)Math.Round(Math.Round(src[i] / step) * step);
            }
            Assert.That(d.Frames[f].Rgb, Is.EqualTo(expected), $"frame {f}: nearest cube colour per channel\n{TestSeed.Describe()}");
        }
    }

    [TestCase(new byte[] { })]
    [TestCase(new byte[] { 5 })]
    [TestCase(new byte[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 })]
    public void LzwHandlesEdgeCases(byte[] indices)
    {
        var data = Gif.Lzw(indices, 8);
        Assert.That(LzwDecode(data, 8, indices.Length), Is.EqualTo(indices));
    }

    [Test]
    public void LongRunsAndSmallCodeSizesRoundTrip()
    {
        var runs = new byte[50_000];
        for (int i = 0; i < runs.Length; i++) runs[i] = (byte)(Rng.Next(20) == 0 ? Rng.Next(4) : i > 0 ? runs[i - 1] : 0);
        Assert.That(LzwDecode(Gif.Lzw(runs, 2), 2, runs.Length), Is.EqualTo(runs), TestSeed.Describe());
        Assert.That(LzwDecode(Gif.Lzw(runs, 8), 8, runs.Length), Is.EqualTo(runs), TestSeed.Describe());
    }

    [Test]
    public void ClipsBecomeOneGridPerFrame()
    {
        const int clips = 3, frames = 4, size = 5;
        var values = TestSeed.Uniform(Rng, clips * frames * 3 * size * size);
        var images = Gif.ClipFrames(values, clips, frames, 3, size, size, padding: 1);
        Assert.That(images, Has.Count.EqualTo(frames));
        for (int f = 0; f < frames; f++)
        {
            var one = new float[clips * 3 * size * size];
            for (int c = 0; c < clips; c++) Array.Copy(values, (c * frames + f) * 75, one, c * 75, 75);
            Assert.That(images[f].Pixels, Is.EqualTo(ImageGrid.Render(one, clips, 3, size, size, padding: 1).Pixels), $"frame {f}");
        }
    }

    [Test]
    public void BadInputIsRejected()
    {
        Assert.Throws<ArgumentException>(() => Gif.Encode([]));
        var e = Assert.Throws<ArgumentException>(() => Gif.Encode([new RgbaImage(4, 4), new RgbaImage(5, 4)]))!;
        Assert.That(e.Message, Does.Contain("frame 1 is 5x4"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gif.Encode([new RgbaImage(4, 4)], delayCentiseconds: -1));
        Assert.Throws<ArgumentException>(() => Gif.Lzw([4], 2));
        Assert.Throws<ArgumentException>(() => Gif.ClipFrames(new float[10], 1, 2, 3, 2, 2));
    }
}
