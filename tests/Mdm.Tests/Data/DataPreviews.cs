using Mdm.Train.Data;
using Mdm.Train.Output;

namespace Mdm.Tests.Data;

/// <summary>
/// Not a check: writes grids of every data set present (shapes, moving shapes, emoji, Fashion-MNIST) and two loss
/// plots under the test output folder, for a person to look at. Run with --filter "FullyQualifiedName~DataPreviews".
/// </summary>
public class DataPreviews
{
    [Test, Explicit("writes preview images for a person to look at")]
    public void WritePreviews()
    {
        var dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "previews");
        var set = new ShapesDataset(32, 64, seed: 1);
        var batch = Enumerable.Range(0, 36).SelectMany(i => ((IDataset)set).Load(i).Values).ToArray();
        ImageGrid.Save(Path.Combine(dir, "shapes.png"), batch, 36, 3, 32, 32, columns: 6, scale: 3);
        var clips = new MovingShapesDataset(24, 8, 6, seed: 1);
        FrameStrip.Save(Path.Combine(dir, "moving.png"), Enumerable.Range(0, 6).SelectMany(i => ((IDataset)clips).Load(i).Values).ToArray(), 6, 8, 3, 24, 24, scale: 3);
        var noise = new Random(1);
        double[] steps = [.. Enumerable.Range(0, 3000).Select(i => i * 5.0)];
        double[] losses = [.. steps.Select(x => 0.04 + 0.5 / (1 + x / 400) * (0.7 + 0.6 * noise.NextDouble()))];
        LossPlot.Save(Path.Combine(dir, "loss.svg"), steps, losses);
        LossPlot.Save(Path.Combine(dir, "loss-log.svg"), steps, losses, new LossPlotOptions { LogY = true, Title = "loss (log)" });
        if (File.Exists(Path.Combine(EmojiTests.RepositoryDataFolder(), "emoji.json")))
        {
            var emoji = EmojiDataset.Open(EmojiTests.RepositoryDataFolder(), imageSize: 32);
            var picks = Enumerable.Range(0, 48).Select(i => i * (emoji.Count / 48)).ToArray();
            ImageGrid.Save(Path.Combine(dir, "emoji.png"), picks.SelectMany(i => ((IDataset)emoji).Load(i).Values).ToArray(), 48, 3, 32, 32, columns: 8, scale: 2);
        }
        if (Directory.Exists(IdxDataset.FashionMnistSystemFolder))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var fashion = IdxDataset.FashionMnist(imageSize: 32);
            TestContext.Out.WriteLine($"Fashion-MNIST: {fashion.Count} images in {clock.ElapsedMilliseconds} ms, label counts " +
                                      string.Join(" ", Enumerable.Range(0, fashion.Count).GroupBy(fashion.LabelOf).OrderBy(g => g.Key).Select(g => g.Count())));
            ImageGrid.Save(Path.Combine(dir, "fashion.png"), Enumerable.Range(0, 40).SelectMany(i => ((IDataset)fashion).Load(i).Values).ToArray(), 40, 1, 32, 32, columns: 10, scale: 2);
        }
        TestContext.Out.WriteLine($"previews in {dir}");
    }
}
