using Mdm.Tests.Harness;
using Mdm.Train.Data;
using NetVips;

namespace Mdm.Tests.Data;

/// <summary>
/// JPEG (baseline, progressive, grayscale, CMYK), WebP and PNG files made here with libvips' encoders, decoded through
/// <see cref="ImageDecoder"/> and compared with a float64 reference of the same preparation (shorter side area-averaged
/// to the target, centre square) on the source pixels, within the codec's loss; bad files give one line naming them.
/// </summary>
public class ImageDecoderTests
{
    /// <summary>Smooth random content (gradients and a wave of period ≥ 70 px): lossy codecs keep it, and every antialiasing
    /// filter (area, Lanczos, DCT scaling) agrees on it up to rounding.</summary>
    internal static byte[] SmoothRgb(Random rng, int width, int height)
    {
        var px = new byte[width * height * 3];
        var coefficients = Enumerable.Range(0, 3).Select(_ => (A: rng.Next(40, 200), X: rng.NextDouble() * 50, Y: rng.NextDouble() * 50, F: rng.NextDouble() * 0.04)).ToArray();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    var k = coefficients[c];
                    double v = k.A + k.X * x / width + k.Y * y / height + 20 * Math.Sin(k.F * (x + 2 * y));
                    px[3 * (y * width + x) + c] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
        return px;
    }

    /// <summary>float64 reference: the largest centred square, area-averaged to size × size; [C, S, S] in 0..255.</summary>
    static double[] Reference(byte[] interleaved, int bands, int width, int height, int size)
    {
        int side = Math.Min(width, height), top = (height - side) / 2, left = (width - side) / 2;
        double scale = (double)side / size;
        var result = new double[bands * size * size];
        for (int c = 0; c < bands; c++)
            for (int oy = 0; oy < size; oy++)
                for (int ox = 0; ox < size; ox++)
                {
                    double sum = 0, weight = 0;
                    for (int y = (int)(oy * scale); y < Math.Min(side, (int)Math.Ceiling((oy + 1) * scale)); y++)
                        for (int x = (int)(ox * scale); x < Math.Min(side, (int)Math.Ceiling((ox + 1) * scale)); x++)
                        {
                            double wy = Math.Min(y + 1, (oy + 1) * scale) - Math.Max(y, oy * scale);
                            double wx = Math.Min(x + 1, (ox + 1) * scale) - Math.Max(x, ox * scale);
                            sum += wy * wx * interleaved[bands * ((top + y) * width + left + x) + c];
                            weight += wy * wx;
                        }
                    result[(c * size + oy) * size + ox] = sum / weight;
                }
        return result;
    }

    static void AssertNear(string what, byte[] actual, double[] expected, double meanTolerance, double maxTolerance)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double sum = 0, max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            (sum, max) = (sum + d, Math.Max(max, d));
        }
        Assert.That(sum / actual.Length, Is.LessThanOrEqualTo(meanTolerance), $"{what}: mean |error|{TestSeed.Describe()}");
        Assert.That(max, Is.LessThanOrEqualTo(maxTolerance), $"{what}: max |error|{TestSeed.Describe()}");
    }

    static byte[] Encode(byte[] rgb, int width, int height, int bands, Func<Image, byte[]> save)
    {
        using var image = Image.NewFromMemory(rgb, width, height, bands, Enums.BandFormat.Uchar);
        return save(image);
    }

    // Sizes chosen so JPEG shrinks on load by 1 (16 from 37), 2 (16 from 45) and 4 (8 from 75), with odd sides. The
    // 1/4 DCT shrink keeps only 2 × 2 of each block's 8 × 8 frequencies, and the Lanczos-3 reduce that follows reads
    // replicated edge pixels up to 7 px beyond the square while the reference averages only inside it: looser there.
    [TestCase(false, 61, 37, 16, 2.5, 14)]
    [TestCase(true, 45, 67, 16, 2.5, 14)]
    [TestCase(true, 75, 99, 8, 6.5, 28)]
    [TestCase(false, 99, 75, 8, 6.5, 28)]
    public void JpegMatchesTheSourcePixels(bool progressive, int width, int height, int size, double meanTolerance, double maxTolerance)
    {
        var rng = TestSeed.NewRandom();
        var rgb = SmoothRgb(rng, width, height);
        var jpeg = Encode(rgb, width, height, 3, im => im.JpegsaveBuffer(q: 95, interlace: progressive));
        Assert.That(jpeg[0..2], Is.EqualTo(new byte[] { 0xFF, 0xD8 }));
        var expected = Reference(rgb, 3, width, height, size);
        var planes = ImageDecoder.DecodeSquare(jpeg, "test.jpg", size, channels: 3);
        AssertNear(progressive ? "progressive" : "baseline", planes, expected, meanTolerance, maxTolerance);
    }

    [Test]
    public void GrayscaleJpegGivesEqualChannelsOrOneLumaPlane()
    {
        var rng = TestSeed.NewRandom();
        var rgb = SmoothRgb(rng, 40, 30);
        var gray = Enumerable.Range(0, 40 * 30).Select(i => rgb[3 * i + 1]).ToArray();
        var jpeg = Encode(gray, 40, 30, 1, im => im.JpegsaveBuffer(q: 95));
        var expected = Reference(gray, 1, 40, 30, 12);
        var three = ImageDecoder.DecodeSquare(jpeg, "gray.jpg", 12, channels: 3);
        for (int c = 0; c < 3; c++) AssertNear($"channel {c}", three[(c * 144)..((c + 1) * 144)], expected, 2.5, 12);
        AssertNear("one channel", ImageDecoder.DecodeSquare(jpeg, "gray.jpg", 12, channels: 1), expected, 2.5, 12);
    }

    [Test]
    public void CmykJpegIsConvertedToRgb()
    {
        // Flat colours survive the CMYK round trip through libvips' built-in profile up to gamut and profile differences.
        using var srgb = Image.Black(24, 16, bands: 3).NewFromImage(200, 60, 30).Cast(Enums.BandFormat.Uchar).Copy(interpretation: Enums.Interpretation.Srgb);
        using var cmyk = srgb.Colourspace(Enums.Interpretation.Cmyk);
        Assert.That(cmyk.Bands, Is.EqualTo(4));
        var jpeg = cmyk.JpegsaveBuffer(q: 98);
        var planes = ImageDecoder.DecodeSquare(jpeg, "cmyk.jpg", 8, channels: 3);
        Assert.That(planes[..64].Select(v => (int)v), Is.All.InRange(185, 215), "red");
        Assert.That(planes[64..128].Select(v => (int)v), Is.All.InRange(45, 75), "green");
        Assert.That(planes[128..].Select(v => (int)v), Is.All.InRange(15, 45), "blue");
    }

    [Test]
    public void LosslessWebPWithAlphaIsExactOnWhite()
    {
        var rng = TestSeed.NewRandom();
        int w = 9, h = 7;
        var rgba = new byte[w * h * 4];
        rng.NextBytes(rgba);
        var webp = Encode(rgba, w, h, 4, im => im.WebpsaveBuffer(lossless: true));
        Assert.That(webp[8..12], Is.EqualTo("WEBP"u8.ToArray()));
        var planes = ImageDecoder.DecodeSquare(webp, "alpha.webp", size: 7, channels: 3);
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 7; x++)
                for (int c = 0; c < 3; c++)
                {
                    int o = 4 * (y * w + x + 1);   // centre crop: column offset (9 − 7) / 2 = 1
                    double a = rgba[o + 3] / 255.0, expected = rgba[o + c] * a + 255 * (1 - a);
                    Assert.That(planes[(c * 7 + y) * 7 + x], Is.EqualTo(expected).Within(1.0), $"({x},{y}) channel {c}{TestSeed.Describe()}");
                }
    }

    [Test]
    public void LossyWebPMatchesTheSourcePixels()
    {
        var rng = TestSeed.NewRandom();
        var rgb = SmoothRgb(rng, 50, 34);
        var webp = Encode(rgb, 50, 34, 3, im => im.WebpsaveBuffer(q: 95));
        var expected = Reference(rgb, 3, 50, 34, 16);
        AssertNear("lossy WebP", ImageDecoder.DecodeSquare(webp, "x.webp", 16, 3), expected, 3, 16);
    }

    [Test]
    public void PngTakesTheOwnCodecExactly()
    {
        var rng = TestSeed.NewRandom();
        var image = new RgbaImage(6, 4);
        rng.NextBytes(image.Pixels);
        for (int i = 3; i < image.Pixels.Length; i += 4) image.Pixels[i] = 255;
        var planes = ImageDecoder.DecodeSquare(Png.Encode(image), "x.png", 4, 3);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                for (int c = 0; c < 3; c++) Assert.That(planes[(c * 4 + y) * 4 + x], Is.EqualTo(image.Pixel(x + 1, y)[c]), $"({x},{y},{c}){TestSeed.Describe()}");
    }

    [TestCase("truncated")]
    [TestCase("corrupt")]
    [TestCase("bomb")]
    [TestCase("not-an-image")]
    public void BadFilesGiveOneLineNamingTheFile(string fault)
    {
        var rng = TestSeed.NewRandom();
        var good = Encode(SmoothRgb(rng, 64, 48), 64, 48, 3, im => im.JpegsaveBuffer(q: 90));
        byte[] bytes = fault switch
        {
            "truncated" => good[..(good.Length / 2)],
            "corrupt" => Corrupted(good, rng),
            "bomb" => WithFrameSize(good, 40000, 30000),
            _ => "GIF89a and then some"u8.ToArray(),
        };
        using var dir = new TempFolder();
        var path = dir.File($"{fault}.jpg");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.LoadSquare(path, 16, 3))!;
        Assert.That(e.Message, Does.Contain(path).And.Not.Contains("\n"), e.Message);
        Assert.That(e.Message, fault switch
        {
            "bomb" => Does.Contain("40000×30000 pixels is over the limit"),
            "not-an-image" => Does.Contain("not a JPEG, PNG or WebP file"),
            _ => Does.StartWith($"JPEG '{path}': cannot be decoded: "),
        });
    }

    static byte[] Corrupted(byte[] good, Random rng)
    {
        var bytes = (byte[])good.Clone();
        for (int i = bytes.Length / 3; i < 2 * bytes.Length / 3; i++) bytes[i] = (byte)rng.Next(256);
        return bytes;
    }

    /// <summary>The JPEG with its frame header claiming another size (a decompression bomb's header).</summary>
    internal static byte[] WithFrameSize(byte[] jpeg, int width, int height)
    {
        var bytes = (byte[])jpeg.Clone();
        for (int i = 2; i + 9 < bytes.Length; i++)
            if (bytes[i] == 0xFF && bytes[i + 1] is 0xC0 or 0xC2)
            {
                (bytes[i + 5], bytes[i + 6], bytes[i + 7], bytes[i + 8]) = ((byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width);
                return bytes;
            }
        throw new InvalidDataException("no frame header");
    }
}
