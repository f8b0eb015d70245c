using Mdm.Tests.Cli;
using Mdm.Tests.Harness;
using NetVips;

namespace Mdm.Tests.Data;

/// <summary>`train --data FOLDER` on ImageNet-style class folders of JPEGs, from the command line.</summary>
[NonParallelizable]
public class JpegTrainingTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Test]
    public void JpegClassFolderTrainsAFewSteps()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        var data = Path.Combine(dir.Path, "train");
        foreach (var synset in new[] { "n01440764", "n01443537", "n01484850" })
            for (int i = 0; i < 4; i++)
            {
                int w = rng.Next(20, 40), h = rng.Next(20, 40);
                using var image = Image.NewFromMemory(ImageDecoderTests.SmoothRgb(rng, w, h), w, h, 3, Enums.BandFormat.Uchar);
                image.Jpegsave(Path.Combine(Directory.CreateDirectory(Path.Combine(data, synset)).FullName, $"{synset}_{i}.JPEG"), interlace: i % 2 == 1);
            }
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps: 3, checkpointEvery: 3));
        var run = Path.Combine(dir.Path, "run");
        var r = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--data", data, "--max-per-class", "3", "--batch", "4",
                                 "--steps", "3", "--sample-every", "0", "--out", run);
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("(9 images)"), "3 classes × --max-per-class 3");
        Assert.That(TrainProcess.Losses(Path.Combine(run, "metrics.jsonl")).Keys, Is.EqualTo(new long[] { 1, 2, 3 }));
    }
}
