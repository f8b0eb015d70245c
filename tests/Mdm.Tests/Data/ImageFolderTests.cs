using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class ImageFolderTests
{
    static RgbaImage Solid(int w, int h, byte r, byte g, byte b, byte a = 255)
    {
        var image = new RgbaImage(w, h);
        for (int i = 0; i < image.Pixels.Length; i += 4) (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2], image.Pixels[i + 3]) = (r, g, b, a);
        return image;
    }

    static float Signed(double byteValue) => (float)(Math.Round(byteValue) / 127.5 - 1);

    [Test]
    public void NestedClassFoldersGiveSortedLabels()
    {
        using var root = new TempFolder();
        // Class folders "ant" < "cat" < "dog" (ordinal); "dog" keeps some images one level deeper; a text file and a
        // hidden folder are ignored.
        Png.Save(root.File("dog", "a.png"), Solid(10, 6, 0, 0, 255));
        Png.Save(root.File("dog", "puppies", "b.PNG"), Solid(5, 5, 0, 0, 200));
        Png.Save(root.File("cat", "c.png"), Solid(7, 9, 0, 255, 0));
        Png.Save(root.File("ant", "d.png"), Solid(3, 3, 255, 0, 0));
        File.WriteAllText(root.File("ant", "notes.txt"), "not an image");
        Png.Save(root.File(".cache", "e.png"), Solid(3, 3, 1, 2, 3));

        var set = ImageFolderDataset.Open(root.Path, imageSize: 4);
        Assert.That(set.ClassNames, Is.EqualTo(new[] { "ant", "cat", "dog" }));
        Assert.That(set.Count, Is.EqualTo(4));
        Assert.That(set.SampleShape, Is.EqualTo(new[] { 3, 4, 4 }));
        var byFile = Enumerable.Range(0, set.Count).ToDictionary(i => Path.GetFileName(set.Files[i]), i => ((IDataset)set).Load(i));
        Assert.That(byFile.ToDictionary(kv => kv.Key, kv => kv.Value.Label),
                    Is.EquivalentTo(new Dictionary<string, int> { ["d.png"] = 0, ["c.png"] = 1, ["a.png"] = 2, ["b.PNG"] = 2 }));
        var blue = byFile["b.PNG"].Values;
        Assert.That(blue[..16], Is.All.EqualTo(-1f), "red plane of a (0, 0, 200) image");
        Assert.That(blue[32..], Is.All.EqualTo(Signed(200)).Within(1e-6f), "blue plane");
        var gray = ImageFolderDataset.Open(root.Path, imageSize: 4, channels: 1);
        Assert.That(((IDataset)gray).Load(gray.Files.ToList().FindIndex(f => f.EndsWith("c.png"))).Values,
                    Is.All.EqualTo(Signed(0.587 * 255)).Within(1e-6f), "gray = Rec. 601 luma of pure green");
    }

    [Test]
    public void FlatFolderIsOneClassAndBadLayoutsAreRejected()
    {
        using var root = new TempFolder();
        Png.Save(root.File("x.png"), Solid(4, 4, 9, 9, 9));
        var flat = ImageFolderDataset.Open(root.Path, 4);
        Assert.That((flat.Count, flat.NumClasses, flat.ClassNames[0]), Is.EqualTo((1, 1, Path.GetFileName(root.Path))));

        Png.Save(root.File("cls", "y.png"), Solid(4, 4, 9, 9, 9));
        Assert.That(() => ImageFolderDataset.Open(root.Path, 4),
                    Throws.TypeOf<DataFormatException>().With.Message.Contains("loose image files (e.g. 'x.png')"));
        File.Delete(root.File("x.png"));
        Directory.CreateDirectory(root.File("empty"));
        Assert.That(() => ImageFolderDataset.Open(root.Path, 4),
                    Throws.TypeOf<DataFormatException>().With.Message.Contains("empty").And.Message.Contains("class folder holds no images"));
        Assert.That(() => ImageFolderDataset.Open(root.File("missing"), 4), Throws.TypeOf<DirectoryNotFoundException>());
    }

    [Test]
    public void CorruptImageFailsWithItsFileName()
    {
        using var root = new TempFolder();
        File.WriteAllBytes(root.File("bad.png"), [137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3]);
        var set = ImageFolderDataset.Open(root.Path, 4);
        Assert.That(() => ((IDataset)set).Load(0), Throws.TypeOf<ImageFormatException>().With.Message.Contains("bad.png"));
    }

    [Test]
    public void CentreCropThenAreaShrinkOnAKnownPattern()
    {
        // 12 x 8 image: 2 red columns either side (cropped away), and an 8 x 8 centre of 2 x 2 blocks whose value
        // encodes the block position. Shrinking to 4 must give exactly one block per pixel.
        var image = Solid(12, 8, 255, 0, 0);
        for (int y = 0; y < 8; y++)
            for (int x = 2; x < 10; x++)
            {
                var p = image.Pixel(x, y);
                (p[0], p[1], p[2]) = ((byte)(10 * ((x - 2) / 2)), (byte)(10 * (y / 2)), 100);
            }
        var rgb = ImageOps.CompositeRgb(image);
        var shrunk = ImageOps.CenterCropResize(rgb, 3, 8, 12, 4);
        for (int by = 0; by < 4; by++)
            for (int bx = 0; bx < 4; bx++)
            {
                Assert.That(shrunk[by * 4 + bx], Is.EqualTo(10f * bx).Within(1e-4f), $"red at block ({bx},{by})");
                Assert.That(shrunk[16 + by * 4 + bx], Is.EqualTo(10f * by).Within(1e-4f), $"green at block ({bx},{by})");
                Assert.That(shrunk[32 + by * 4 + bx], Is.EqualTo(100f).Within(1e-4f));
            }

        // Non-integer shrink 8 -> 3: each output averages 8/3 source pixels with fractional edge weights.
        float[] ramp = [.. Enumerable.Range(0, 8).Select(i => (float)i)];
        var three = ImageOps.Resize(ramp, 1, 1, 8, 0, 0, 1, 8, 1, 3);
        double w = 8.0 / 3;
        double Area(double lo, double hi) => Enumerable.Range(0, 8).Sum(i => Math.Max(0, Math.Min(hi, i + 1) - Math.Max(lo, i)) * i) / w;
        Assert.That(three, Is.EqualTo(new[] { (float)Area(0, w), (float)Area(w, 2 * w), (float)Area(2 * w, 8) }).Within(1e-4f));
        Assert.That(three.Average(), Is.EqualTo(ramp.Average()).Within(1e-4f), "area averaging keeps the mean");
    }

    [Test]
    public void BilinearEnlargeAndIdentity()
    {
        float[] two = [0f, 100f];
        Assert.That(ImageOps.Resize(two, 1, 1, 2, 0, 0, 1, 2, 1, 4), Is.EqualTo(new[] { 0f, 25f, 75f, 100f }).Within(1e-4f),
                    "pixel-centre aligned bilinear, edges repeated");
        var rng = TestSeed.NewRandom();
        var random = TestSeed.Uniform(rng, 2 * 5 * 7, 0, 255);
        Assert.That(ImageOps.Resize(random, 2, 5, 7, 0, 0, 5, 7, 5, 7), Is.EqualTo(random), "same size is the identity" + TestSeed.Describe());
        // 2-D: 2 x 2 -> 4 x 4 is the outer product of the 1-D weights.
        float[] quad = [0f, 100f, 100f, 200f];
        var big = ImageOps.Resize(quad, 1, 2, 2, 0, 0, 2, 2, 4, 4);
        float[] oneD = [0f, 0.25f, 0.75f, 1f];
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                Assert.That(big[y * 4 + x], Is.EqualTo(100 * oneD[x] + 100 * oneD[y]).Within(1e-3f), $"({x},{y})");
    }

    [Test]
    public void RgbaIsCompositedOnWhite()
    {
        var rng = TestSeed.NewRandom();
        using var root = new TempFolder();
        var image = new RgbaImage(6, 6);
        rng.NextBytes(image.Pixels);
        image.Pixel(0, 0)[3] = 0;     // fully transparent: white whatever the colour
        image.Pixel(1, 0)[3] = 255;   // opaque: its own colour
        Png.Save(root.File("a.png"), image);
        var values = ((IDataset)ImageFolderDataset.Open(root.Path, 6)).Load(0).Values;
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                for (int c = 0; c < 3; c++)
                {
                    var p = image.Pixel(x, y);
                    double expected = p[c] * p[3] / 255.0 + 255 * (1 - p[3] / 255.0);
                    // One byte level of slack: float vs double may round an exact .5 differently.
                    Assert.That(values[c * 36 + y * 6 + x], Is.EqualTo(Signed(expected)).Within(1.01f / 127.5f),
                                $"pixel ({x},{y}) channel {c}: RGBA {p[0]},{p[1]},{p[2]},{p[3]}" + TestSeed.Describe());
                }
        Assert.That(values[0], Is.EqualTo(1f), "transparent pixel is white");
    }
}
