using System.Buffers.Binary;
using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class PngTests
{
    static RgbaImage RandomImage(Random rng, int w, int h, bool smooth)
    {
        var image = new RgbaImage(w, h);
        if (!smooth) rng.NextBytes(image.Pixels);
        else
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    var p = image.Pixel(x, y);
                    (p[0], p[1], p[2], p[3]) = ((byte)(x * 7 + y), (byte)(y * 5), (byte)((x ^ y) * 3), (byte)(255 - x - y));
                }
        return image;
    }

    [TestCase(1, 1), TestCase(37, 23), TestCase(64, 5), TestCase(3, 71)]
    public void EncodeDecodeRoundTripsRgbaAndRgb(int w, int h)
    {
        var rng = TestSeed.NewRandom();
        foreach (bool smooth in new[] { false, true })
        {
            var image = RandomImage(rng, w, h, smooth);
            var rgba = Png.Decode(Png.Encode(image), "rgba");
            Assert.That(rgba.Pixels, Is.EqualTo(image.Pixels), $"RGBA {w}x{h} smooth={smooth}" + TestSeed.Describe());
            var rgb = Png.Decode(Png.Encode(image, withAlpha: false), "rgb");
            var opaque = (byte[])image.Pixels.Clone();
            for (int i = 3; i < opaque.Length; i += 4) opaque[i] = 255;
            Assert.That(rgb.Pixels, Is.EqualTo(opaque), $"RGB {w}x{h} smooth={smooth}" + TestSeed.Describe());
        }
    }

    [Test]
    public void EncoderWritesWellFormedChunks()
    {
        var file = Png.Encode(RandomImage(TestSeed.NewRandom(), 9, 4, smooth: true), withAlpha: false);
        var chunks = PngBuilder.Chunks(file);
        Assert.That(chunks.Select(c => c.Type), Is.EqualTo(new[] { "IHDR", "IDAT", "IEND" }));
        var ihdr = chunks[0].Data;
        Assert.That((BinaryPrimitives.ReadInt32BigEndian(ihdr), BinaryPrimitives.ReadInt32BigEndian(ihdr.AsSpan(4)), ihdr[8], ihdr[9], ihdr[12]),
                    Is.EqualTo((9, 4, (byte)8, (byte)2, (byte)0)), "IHDR: 9x4, 8-bit RGB, not interlaced");
        for (int pos = 8; pos < file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(pos));
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos + 8 + length));
            Assert.That(stored, Is.EqualTo(Crc32.Compute(file.AsSpan(pos + 4, 4 + length))), $"CRC of chunk at {pos}");
            pos += 12 + length;
        }
    }

    [Test]
    public void Crc32MatchesKnownValues()
    {
        Assert.That(Crc32.Compute("123456789"u8), Is.EqualTo(0xCBF43926u), "the CRC-32 check value");
        Assert.That(Crc32.Compute("IEND"u8), Is.EqualTo(0xAE426082u), "the CRC every PNG ends with");
    }

    static readonly object[] ColourTypes =
    [
        new object[] { 0, 1 }, new object[] { 0, 2 }, new object[] { 0, 4 }, new object[] { 0, 8 }, new object[] { 0, 16 },
        new object[] { 2, 8 }, new object[] { 2, 16 },
        new object[] { 3, 1 }, new object[] { 3, 2 }, new object[] { 3, 4 }, new object[] { 3, 8 },
        new object[] { 4, 8 }, new object[] { 4, 16 }, new object[] { 6, 8 }, new object[] { 6, 16 },
    ];

    [TestCaseSource(nameof(ColourTypes))]
    public void DecodesColourTypeAndDepth(int colourType, int bitDepth)
    {
        var rng = TestSeed.NewRandom();
        foreach (bool interlaced in new[] { false, true })
            for (int trial = 0; trial < 4; trial++)
            {
                // Odd sizes, including 1-pixel ones that leave Adam7 passes empty and rows with partial bytes.
                int w = trial == 0 ? 1 : rng.Next(1, 20), h = trial == 1 ? 1 : rng.Next(1, 20);
                var spec = PngBuilder.Random(rng, w, h, colourType, bitDepth, interlaced);
                var decoded = Png.Decode(PngBuilder.Build(spec, rng), "built.png");
                Assert.That((decoded.Width, decoded.Height), Is.EqualTo((w, h)));
                Assert.That(decoded.Pixels, Is.EqualTo(PngBuilder.ExpectedRgba(spec)),
                            $"type {colourType} depth {bitDepth} {w}x{h} interlaced={interlaced} tRNS={spec.Transparency is not null}" + TestSeed.Describe());
            }
    }

    [Test]
    public void TransparencyKeysAndPaletteAlpha()
    {
        var rng = TestSeed.NewRandom();
        // Gray 8-bit with key 7: only pixels equal to 7 turn transparent.
        var gray = new PngBuilder.Spec(3, 1, 0, 8, [7, 8, 7], Transparency: [0, 7]);
        Assert.That(Png.Decode(PngBuilder.Build(gray, rng)).Pixels, Is.EqualTo(new byte[] { 7, 7, 7, 0, 8, 8, 8, 255, 7, 7, 7, 0 }));
        // RGB 16-bit key compared at full precision: 0x0102 vs 0x0103 differ although both round to 1 in 8 bits.
        var rgb16 = new PngBuilder.Spec(2, 1, 2, 16, [0x0102, 0, 0, 0x0103, 0, 0], Transparency: [1, 2, 0, 0, 0, 0]);
        Assert.That(Png.Decode(PngBuilder.Build(rgb16, rng)).Pixels, Is.EqualTo(new byte[] { 1, 0, 0, 0, 1, 0, 0, 255 }));
        // Palette: tRNS shorter than the palette leaves later entries opaque.
        var palette = new PngBuilder.Spec(3, 1, 3, 2, [0, 1, 2], Palette: [10, 20, 30, 40, 50, 60, 70, 80, 90], Transparency: [0, 128]);
        Assert.That(Png.Decode(PngBuilder.Build(palette, rng)).Pixels,
                    Is.EqualTo(new byte[] { 10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255 }));
    }

    [Test]
    public void SkipsAncillaryChunksAndRejectsUnknownCriticalOnes()
    {
        var rng = TestSeed.NewRandom();
        var spec = PngBuilder.Random(rng, 5, 4, 6, 8, false);
        var withText = PngBuilder.Build(spec, rng, [("tEXt", "Comment\0hello"u8.ToArray()), ("gAMA", [0, 0, 177, 143])]);
        Assert.That(Png.Decode(withText).Pixels, Is.EqualTo(PngBuilder.ExpectedRgba(spec)));
        var withCritical = PngBuilder.Build(spec, rng, [("ABCD", [1, 2, 3])]);
        Assert.That(() => Png.Decode(withCritical, "crit.png"),
                    Throws.TypeOf<ImageFormatException>().With.Message.EqualTo("PNG 'crit.png': unknown critical chunk 'ABCD'"));
    }

    [Test]
    public void CrcMismatchNamesChunkAndFile()
    {
        var rng = TestSeed.NewRandom();
        var file = PngBuilder.Build(PngBuilder.Random(rng, 6, 6, 2, 8, false), rng);
        file[8 + 8 + 2] ^= 0x10;   // a byte of the IHDR width
        Assert.That(() => Png.Decode(file, "bad-crc.png"),
                    Throws.TypeOf<ImageFormatException>().With.Message.StartsWith("PNG 'bad-crc.png': CRC mismatch in chunk 'IHDR' at byte 8"));
    }

    [Test]
    public void EveryTruncationIsReported()
    {
        var rng = TestSeed.NewRandom();
        var file = PngBuilder.Build(PngBuilder.Random(rng, 7, 5, 6, 8, true), rng);
        for (int length = 0; length < file.Length; length++)
        {
            var ex = Assert.Throws<ImageFormatException>(() => Png.Decode(file.AsSpan(0, length), "cut.png"), $"cut at {length} of {file.Length}");
            Assert.That(ex!.Message, Does.StartWith("PNG 'cut.png': "));
            Assert.That(ex.FileName, Is.EqualTo("cut.png"));
            if (length >= 8) Assert.That(ex.Message, Does.Contain("truncated"), $"cut at {length}: {ex.Message}");
        }
    }

    [Test]
    public void RejectsMalformedStructure()
    {
        var rng = TestSeed.NewRandom();
        var spec = PngBuilder.Random(rng, 4, 3, 3, 4, false) with { Transparency = null };
        var chunks = PngBuilder.Chunks(PngBuilder.Build(spec, rng));
        void Expect(IEnumerable<(string, byte[])> parts, string problem) =>
            Assert.That(() => Png.Decode(PngBuilder.Assemble(parts), "x.png"),
                        Throws.TypeOf<ImageFormatException>().With.Message.Contains(problem));

        Assert.That(() => Png.Decode("GIF89a-not-a-png"u8, "x.gif"), Throws.TypeOf<ImageFormatException>().With.Message.Contains("bad signature"));
        Expect(chunks.Where(c => c.Type != "PLTE"), "no PLTE before IDAT");
        Expect(chunks.Where(c => c.Type != "IDAT"), "no IDAT chunk before IEND");
        Expect(chunks.Skip(1), "expected IHDR");
        Expect([chunks[0], .. chunks.Where(c => c.Type == "PLTE"), chunks.First(c => c.Type == "IDAT"), ("tEXt", [65, 0, 66]),
                .. chunks.Where(c => c.Type == "IDAT").Skip(1), chunks[^1]], "not consecutive");
        var badDepth = (byte[])chunks[0].Data.Clone();
        badDepth[8] = 16;   // palette images cannot be 16-bit
        Expect([("IHDR", badDepth), .. chunks.Skip(1)], "bit depth 16 is invalid for colour type 3");
        var interlace = (byte[])chunks[0].Data.Clone();
        interlace[12] = 2;
        Expect([("IHDR", interlace), .. chunks.Skip(1)], "unknown interlace method 2");

        // A palette index beyond the palette, and an unknown filter type, hidden inside valid compressed data.
        var indexSpec = spec with { Samples = [.. spec.Samples.Select(_ => 0)] };
        indexSpec.Samples[5] = 15;
        Expect(PngBuilder.Chunks(PngBuilder.Build(indexSpec with { Palette = [1, 2, 3] }, rng)), "palette index 15 out of range");
        var raw = new byte[3 * (1 + 2)];
        raw[3] = 9;   // filter byte of row 1
        Expect([chunks[0], chunks[1], ("IDAT", PngBuilder.Deflate(raw)), ("IEND", [])], "unknown filter type 9 on row 1");
        Expect([chunks[0], chunks[1], ("IDAT", PngBuilder.Deflate(raw[..5])), ("IEND", [])], "ends early");
        Expect([chunks[0], chunks[1], ("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]), ("IEND", [])], "corrupt compressed image data");
    }

    [TestCase(100_000, 100_000, "exceeds the limit")]
    [TestCase(16_000, 16_000, "far too short")]
    [TestCase(0, 5, "invalid image size 0x5")]
    public void RejectsAbsurdDimensionsBeforeAllocating(int w, int h, string problem)
    {
        var rng = TestSeed.NewRandom();
        var chunks = PngBuilder.Chunks(PngBuilder.Build(PngBuilder.Random(rng, 4, 4, 6, 8, false), rng));
        var ihdr = (byte[])chunks[0].Data.Clone();
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.That(() => Png.Decode(PngBuilder.Assemble([("IHDR", ihdr), .. chunks.Skip(1)]), "huge.png"),
                    Throws.TypeOf<ImageFormatException>().With.Message.Contains(problem));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(1 << 20), "allocated pixel memory before rejecting");
    }

    [Test]
    public void LoadNamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mdm-png-{Guid.NewGuid():N}.png");
        try
        {
            File.WriteAllBytes(path, [137, 80, 78, 71, 13, 10, 26, 10, 0, 0]);
            Assert.That(() => Png.Load(path), Throws.TypeOf<ImageFormatException>().With.Message.Contains(path).And.Message.Contains("truncated"));
            var image = RandomImage(TestSeed.NewRandom(), 5, 3, smooth: false);
            Png.Save(path, image);
            Assert.That(Png.Load(path).Pixels, Is.EqualTo(image.Pixels));
        }
        finally { File.Delete(path); }
    }
}
