using System.IO.Compression;
using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class IdxTests
{
    static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var z = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    [Test]
    public void ImagesAndLabelsRoundTripPlainAndGzip()
    {
        var rng = TestSeed.NewRandom();
        int n = rng.Next(1, 9), rows = rng.Next(1, 12), cols = rng.Next(1, 12);
        var pixels = new byte[n * rows * cols];
        rng.NextBytes(pixels);
        var labels = new byte[n];
        rng.NextBytes(labels);
        foreach (bool gzip in new[] { false, true })
        {
            var imageFile = Idx.Write([n, rows, cols], pixels);
            var labelFile = Idx.Write([n], labels);
            if (gzip) (imageFile, labelFile) = (Gzip(imageFile), Gzip(labelFile));
            var images = Idx.ReadImages(imageFile, "images");
            Assert.That((images.Count, images.Rows, images.Columns), Is.EqualTo((n, rows, cols)), $"gzip={gzip}" + TestSeed.Describe());
            Assert.That(images.Pixels, Is.EqualTo(pixels));
            Assert.That(images.Image(n - 1).ToArray(), Is.EqualTo(pixels[^(rows * cols)..]));
            Assert.That(Idx.ReadLabels(labelFile, "labels"), Is.EqualTo(labels));
        }
    }

    [Test]
    public void MalformedFilesNameTheFileAndTheProblem()
    {
        var good = Idx.Write([2, 3, 4], new byte[24]);
        void Expect(byte[] file, string problem, bool labels = false)
        {
            Action read = labels ? () => Idx.ReadLabels(file, "t.idx") : () => Idx.ReadImages(file, "t.idx");
            Assert.That(read, Throws.TypeOf<DataFormatException>().With.Message.StartsWith("'t.idx': ").And.Message.Contains(problem));
        }
        Expect([], "file ends after 0 bytes");
        Expect([1, 0, 8, 3, .. good[4..]], "not an IDX file");
        Expect([0, 0, 0x0D, 3, .. good[4..]], "element type 0x0D is not supported");
        Expect(good, "has 3 dimensions, expected 1 (labels)", labels: true);
        Expect(good[..10], "header truncated: 10 of 16 bytes");
        Expect(good[..^1], "truncated: dimensions [2, 3, 4] need 24 data bytes, the file holds 23");
        Expect([.. good, 0], "file is longer than dimensions [2, 3, 4] imply");
        Expect([.. good[..4], 0, 0, 0, 0, .. good[8..]], "dimension 0 is 0");
        Expect([.. good[..4], 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, .. good[12..]], "are too large");
        Expect([.. good[..4], 0, 0x10, 0, 0, .. good[8..]], "truncated: dimensions [1048576, 3, 4] need 12582912 data bytes, the file holds 24");
        Expect(Gzip([.. good[..4], 0, 0x10, 0, 0, .. good[8..]]), "need 12582912 data bytes, more than a");
        var gzipCut = Gzip([.. good[..^1]]);
        Expect(gzipCut, "truncated: dimensions [2, 3, 4] need 24 data bytes, found 23");
        Expect(Gzip(good)[..^6], "gzip trailer");
        var badTrailer = Gzip(good);
        badTrailer[^8] ^= 1;
        Expect(badTrailer, "corrupt gzip data");   // zlib checks a present trailer itself
        var badDeflate = Gzip(good);
        badDeflate[10] = 0xFF;   // first deflate block header: reserved block type
        Expect(badDeflate, "corrupt gzip data");
    }

    [Test]
    public void DatasetReadsSplitFolderAndResizes()
    {
        var rng = TestSeed.NewRandom();
        using var folder = new TempFolder();
        int n = 7;
        var pixels = new byte[n * 28 * 28];
        rng.NextBytes(pixels);
        byte[] labels = [.. Enumerable.Range(0, n).Select(_ => (byte)rng.Next(10))];
        File.WriteAllBytes(folder.File("train-images-idx3-ubyte.gz"), Gzip(Idx.Write([n, 28, 28], pixels)));
        File.WriteAllBytes(folder.File("train-labels.idx1-ubyte"), Idx.Write([n], labels));   // the original MNIST spelling

        var native = IdxDataset.FashionMnist(folder.Path);
        Assert.That((native.Count, native.Channels, native.ImageSize, native.NumClasses), Is.EqualTo((n, 1, 28, 10)));
        Assert.That(native.ClassNames[9], Is.EqualTo("Ankle boot"));
        var item = ((IDataset)native).Load(3);
        Assert.That(item.Label, Is.EqualTo(labels[3]));
        for (int i = 0; i < 28 * 28; i++)
            Assert.That(item.Values[i], Is.EqualTo(pixels[3 * 784 + i] / 127.5f - 1f).Within(1e-6f), $"pixel {i}" + TestSeed.Describe());

        var enlarged = IdxDataset.Mnist(folder.Path, imageSize: 32);
        Assert.That(enlarged.SampleShape, Is.EqualTo(new[] { 1, 32, 32 }));
        var big = ((IDataset)enlarged).Load(3).Values;
        Assert.That(big.Min(), Is.GreaterThanOrEqualTo(-1f));
        Assert.That(big.Max(), Is.LessThanOrEqualTo(1f));
        Assert.That(big.Average(), Is.EqualTo(item.Values.Average()).Within(0.05), "resizing keeps the mean brightness");

        Assert.That(() => IdxDataset.FashionMnist(folder.Path, train: false),
                    Throws.TypeOf<FileNotFoundException>().With.Message.Contains("t10k-images-idx3-ubyte").And.Message.Contains("apt-get install dataset-fashion-mnist"));
    }

    [Test]
    public void DatasetRejectsInconsistentFiles()
    {
        var images = new IdxImages(3, 4, 4, new byte[48]);
        Assert.That(() => new IdxDataset(images, [1, 2], IdxDataset.DigitClasses, source: "m"),
                    Throws.TypeOf<DataFormatException>().With.Message.EqualTo("'m': 3 images but 2 labels"));
        Assert.That(() => new IdxDataset(images, [1, 2, 10], IdxDataset.DigitClasses, source: "m"),
                    Throws.TypeOf<DataFormatException>().With.Message.EqualTo("'m': label 10 of sample 2 is not below the 10 classes"));
    }
}
