using Mdm.Tests.Harness;
using Mdm.Train.Data;
using NetVips;

namespace Mdm.Tests.Data;

/// <summary>ImageNet's layout: class folders of JPEGs (mixed with PNG and WebP here), a synset list, --max-per-class.</summary>
public class ImageNetLayoutTests
{
    static void WriteImage(string path, Random rng, int width, int height)
    {
        using var image = Image.NewFromMemory(ImageDecoderTests.SmoothRgb(rng, width, height), width, height, 3, Enums.BandFormat.Uchar);
        image.WriteToFile(path);
    }

    [Test]
    public void SynsetListOrdersClassesAndMaxPerClassKeepsTheFirstFiles()
    {
        var rng = TestSeed.NewRandom();
        using var root = new TempFolder();
        WriteImage(root.File("n02", "b.jpg"), rng, 30, 20);
        WriteImage(root.File("n02", "a.JPEG"), rng, 20, 30);
        WriteImage(root.File("n02", "c.webp"), rng, 25, 25);
        WriteImage(root.File("n01", "z.png"), rng, 17, 19);
        File.WriteAllText(root.File("LOC_synset_mapping.txt"), "n03 not present here\nn02 second folder\nn01 first folder\n");

        var set = ImageFolderDataset.Open(root.Path, imageSize: 8);
        Assert.That(set.ClassNames, Is.EqualTo(new[] { "n03", "n02", "n01" }), "the list's order, every listed synset");
        var labels = Enumerable.Range(0, set.Count).ToDictionary(i => Path.GetFileName(set.Files[i]), set.LabelOf);
        Assert.That(labels, Is.EquivalentTo(new Dictionary<string, int> { ["a.JPEG"] = 1, ["b.jpg"] = 1, ["c.webp"] = 1, ["z.png"] = 2 }));
        var values = new float[((IDataset)set).SampleLength];
        for (int i = 0; i < set.Count; i++) Assert.That(((IDataset)set).LoadInto(i, values), Is.EqualTo(set.LabelOf(i)));

        var few = ImageFolderDataset.Open(root.Path, imageSize: 8, maxPerClass: 2);
        Assert.That(few.Files.Select(Path.GetFileName), Is.EquivalentTo(new[] { "a.JPEG", "b.jpg", "z.png" }), "first two of n02 in ordinal order");

        File.Delete(root.File("LOC_synset_mapping.txt"));
        var sorted = ImageFolderDataset.Open(root.Path, imageSize: 8);
        Assert.That(sorted.ClassNames, Is.EqualTo(new[] { "n01", "n02" }), "without a list: ordinal folder order (ImageNet's index)");
        File.WriteAllText(root.File("synsets.txt"), "n01\n");
        Assert.That(() => ImageFolderDataset.Open(root.Path, 8),
                    Throws.TypeOf<DataFormatException>().With.Message.Contains("does not list the class folder 'n02'").And.Message.Contains("synsets.txt"));
    }
}
