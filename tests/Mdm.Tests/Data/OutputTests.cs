using System.Globalization;
using System.Xml.Linq;
using Mdm.Tests.Harness;
using Mdm.Train.Data;
using Mdm.Train.Output;

namespace Mdm.Tests.Data;

public class ImageGridTests
{
    [TestCase(10, 3, 3, 5, 4, 2, 3, 70, 35)]    // 4 columns x 3 rows of 15 x 9 tiles, 5 gaps of 2
    [TestCase(7, 1, 4, 4, 0, 1, 1, 16, 16)]     // automatic: ceil(sqrt(7)) = 3 columns, 3 rows
    [TestCase(1, 3, 2, 6, 0, 0, 4, 24, 8)]      // one tile, no padding
    [TestCase(3, 3, 2, 2, 8, 2, 1, 14, 6)]      // more columns than images: one row
    public void GridDimensions(int count, int channels, int h, int w, int columns, int padding, int scale, int gridW, int gridH)
    {
        var images = TestSeed.Uniform(TestSeed.NewRandom(), (long)count * channels * h * w);
        var grid = ImageGrid.Render(images, count, channels, h, w, columns, padding, scale);
        Assert.That((grid.Width, grid.Height), Is.EqualTo((gridW, gridH)));
        var layout = ImageGrid.Layout(count, h, w, columns, padding, scale);
        Assert.That((layout.Width, layout.Height), Is.EqualTo((gridW, gridH)));
    }

    [Test]
    public void TilesArePlacedScaledAndClamped()
    {
        var rng = TestSeed.NewRandom();
        const int count = 5, c = 3, h = 3, w = 4, cols = 2, pad = 1, scale = 2;
        var images = TestSeed.Uniform(rng, count * c * h * w, -1.5f, 1.5f);   // some values outside [-1, 1]
        images[2 * c * h * w + 5] = float.NaN;                                 // image 2, red plane, pixel (1, 1)
        var grid = ImageGrid.Render(images, count, c, h, w, cols, pad, scale, padColour: 7);
        Assert.That(grid.Pixel(0, 0).ToArray(), Is.EqualTo(new byte[] { 7, 7, 7, 255 }), "padding");
        for (int n = 0; n < count; n++)
            for (int y = 0; y < h * scale; y++)
                for (int x = 0; x < w * scale; x++)
                {
                    int gx = pad + (n % cols) * (w * scale + pad) + x, gy = pad + (n / cols) * (h * scale + pad) + y;
                    var px = grid.Pixel(gx, gy).ToArray();
                    int sx = x / scale, sy = y / scale;
                    if (n == 2 && sx == 1 && sy == 1) { Assert.That(px, Is.EqualTo(new byte[] { 255, 0, 255, 255 }), "NaN pixel is magenta"); continue; }
                    for (int ch = 0; ch < 3; ch++)
                    {
                        float v = Math.Clamp(images[((n * c + ch) * h + sy) * w + sx], -1f, 1f);
                        Assert.That(px[ch], Is.EqualTo((byte)Math.Round((v + 1) * 127.5)).Within(1), $"image {n} ({sx},{sy}) channel {ch}" + TestSeed.Describe());
                    }
                }
        // The empty sixth slot stays padding colour.
        Assert.That(grid.Pixel(pad + w * scale + pad, pad + 2 * (h * scale + pad)).ToArray(), Is.EqualTo(new byte[] { 7, 7, 7, 255 }));
    }

    [Test]
    public void GrayTilesAndFrameStripSaveAsPng()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        var gray = TestSeed.Uniform(rng, 4 * 6 * 6);
        string path = dir.File("out", "grid.png");
        ImageGrid.Save(path, gray, 4, 1, 6, 6, scale: 2);
        var loaded = Png.Load(path);
        Assert.That(loaded.Pixels, Is.EqualTo(ImageGrid.Render(gray, 4, 1, 6, 6, scale: 2).Pixels));
        var p = loaded.Pixel(2, 2);
        Assert.That(p[0] == p[1] && p[1] == p[2], "gray replicated into R, G and B");

        // 2 clips x 5 frames: one row per clip, frames across.
        var clips = TestSeed.Uniform(rng, 2 * 5 * 3 * 4 * 4);
        var strip = FrameStrip.Render(clips, 2, 5, 3, 4, 4, padding: 1);
        Assert.That((strip.Width, strip.Height), Is.EqualTo((5 * 4 + 6, 2 * 4 + 3)));
        FrameStrip.Save(dir.File("strip.png"), clips, 2, 5, 3, 4, 4, padding: 1);
        Assert.That(Png.Load(dir.File("strip.png")).Pixels, Is.EqualTo(strip.Pixels));
        Assert.That(() => FrameStrip.Render(clips, 2, 4, 3, 4, 4), Throws.ArgumentException.With.Message.Contains("expected [2, 4, 3, 4, 4]"));
    }

    [Test]
    public void RejectsBadArguments()
    {
        Assert.That(() => ImageGrid.Render(new float[10], 1, 3, 2, 2), Throws.ArgumentException.With.Message.Contains("expected [1, 3, 2, 2]"));
        Assert.That(() => ImageGrid.Render(new float[8], 2, 2, 2, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => ImageGrid.Layout(4, 2, 2, scale: 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => ImageGrid.Layout(100_000, 64, 64, scale: 16), Throws.ArgumentException.With.Message.Contains("too large"));
    }
}

public class LossPlotTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    static XDocument Parse(string svg) => XDocument.Parse(svg);

    static List<(double X, double Y)> Points(XElement polyline) =>
        [.. polyline.Attribute("points")!.Value.Split(' ').Select(p => p.Split(','))
                    .Select(p => (double.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture)))];

    [Test]
    public void WritesWellFormedSvgWithAxesLabelsAndCurves()
    {
        var rng = TestSeed.NewRandom();
        int n = rng.Next(50, 400);
        double[] steps = [.. Enumerable.Range(0, n).Select(i => i * 10.0)];
        double[] losses = [.. steps.Select(s => 1.0 / (1 + s / 300) + 0.05 * rng.NextDouble())];
        var svg = LossPlot.ToSvg(steps, losses, new LossPlotOptions { Title = "MDM <loss> & more" });
        var doc = Parse(svg);
        var root = doc.Root!;
        Assert.That(root.Name, Is.EqualTo(Svg + "svg"));
        Assert.That(root.Attribute("width")!.Value, Is.EqualTo("800"));
        var texts = root.Elements(Svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("MDM <loss> & more").And.Contain("step").And.Contain("loss").And.Contain("raw"));
        Assert.That(texts.Count(t => double.TryParse(t, CultureInfo.InvariantCulture, out _)), Is.GreaterThanOrEqualTo(6), "numeric tick labels");
        var lines = root.Elements(Svg + "polyline").ToList();
        Assert.That(lines, Has.Count.EqualTo(2), "raw and smoothed curves");
        var raw = Points(lines[0]);
        Assert.That(raw, Has.Count.EqualTo(n));
        Assert.That(raw.Select(p => p.X), Is.Ordered, "x increases with the step");
        Assert.That(raw.All(p => p.X >= 72 - 1e-9 && p.X <= 800 - 24 + 1e-9 && p.Y >= 40 - 1e-9 && p.Y <= 480 - 52 + 1e-9), "inside the plot area" + TestSeed.Describe());
        // Higher loss is drawn higher up (smaller y).
        int hi = Array.IndexOf(losses, losses.Max()), lo = Array.IndexOf(losses, losses.Min());
        Assert.That(raw[hi].Y, Is.LessThan(raw[lo].Y));
    }

    [Test]
    public void NonFiniteValuesLogScaleAndEmptySeriesStillGiveValidSvg()
    {
        double[] steps = [0, 1, 2, 3, 4, 5];
        double[] losses = [1, double.NaN, 0.5, double.PositiveInfinity, -1, 0.01];
        var linear = Parse(LossPlot.ToSvg(steps, losses)).Root!;
        Assert.That(Points(linear.Elements(Svg + "polyline").First()), Has.Count.EqualTo(4), "NaN and Inf are left out");
        var log = Parse(LossPlot.ToSvg(steps, losses, new LossPlotOptions { LogY = true, Smoothing = 0 })).Root!;
        Assert.That(log.Elements(Svg + "polyline").ToList(), Has.Count.EqualTo(1), "no smoothed curve with smoothing 0");
        Assert.That(Points(log.Elements(Svg + "polyline").First()), Has.Count.EqualTo(3), "non-positive values are left out of a log axis");
        var logTicks = log.Elements(Svg + "text").Select(t => t.Value).Where(t => t.StartsWith('0') || t.StartsWith('1') || t.StartsWith('2') || t.StartsWith('5')).ToList();
        Assert.That(logTicks, Is.SupersetOf(new[] { "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1" }), "1-2-5 ticks over two decades");
        var logPoints = Points(log.Elements(Svg + "polyline").First());
        Assert.That(logPoints.Select(p => p.Y), Is.EqualTo(new[] { 40.0, 40 + (480 - 40 - 52) * Math.Log10(2) / 2, 480 - 52 }).Within(0.01),
                    "1, 0.5 and 0.01 on a 0.01..1 log axis: top, log10(2)/2 down, bottom");
        var empty = Parse(LossPlot.ToSvg([], [])).Root!;
        Assert.That(empty.Elements(Svg + "text").Select(t => t.Value), Does.Contain("no finite data"));
        var single = Parse(LossPlot.ToSvg([5], [0.3])).Root!;
        Assert.That(single.Elements(Svg + "circle").Count(), Is.GreaterThanOrEqualTo(1), "one point is drawn as a dot");
        Assert.That(() => LossPlot.ToSvg([1, 2], [1]), Throws.ArgumentException.With.Message.Contains("2 steps but 1 losses"));
    }

    [Test]
    public void LongSeriesAreReducedButKeepSpikes()
    {
        var rng = TestSeed.NewRandom();
        int n = 100_000;
        double[] steps = [.. Enumerable.Range(0, n).Select(i => (double)i)];
        double[] losses = [.. Enumerable.Range(0, n).Select(_ => 0.1 + 0.01 * rng.NextDouble())];
        int spike = rng.Next(n);
        losses[spike] = 5;
        using var dir = new TempFolder();
        string path = dir.File("plots", "loss.svg");
        LossPlot.Save(path, steps, losses);
        var root = XDocument.Load(path).Root!;
        var raw = Points(root.Elements(Svg + "polyline").First());
        Assert.That(raw.Count, Is.LessThanOrEqualTo(2 * (800 - 72 - 24) + 2), "at most min and max per pixel column");
        Assert.That(raw.Min(p => p.Y), Is.EqualTo(40).Within(1.0), $"the spike at step {spike} reaches the top" + TestSeed.Describe());
        Assert.That(new FileInfo(path).Length, Is.LessThan(100_000), "file size bounded");
    }

    [Test]
    public void SmoothingAndTicks()
    {
        Assert.That(LossPlot.Smooth([2, 2, 2, 2], 0.9), Is.EqualTo(new[] { 2, 2, 2, 2 }).Within(1e-12), "bias-corrected: a constant stays constant");
        var s = LossPlot.Smooth([0, 1], 0.5);
        Assert.That(s, Is.EqualTo(new[] { 0, 2.0 / 3 }).Within(1e-12), "(0.5·0.5·0 + 0.5·1) / (1 − 0.25)");
        Assert.That(LossPlot.NiceTicks(0, 1, 5), Is.EqualTo(new[] { 0, 0.2, 0.4, 0.6, 0.8, 1.0 }).Within(1e-12));
        Assert.That(LossPlot.NiceTicks(3, 97, 5), Is.EqualTo(new[] { 0.0, 20, 40, 60, 80, 100 }).Within(1e-9));
        Assert.That(LossPlot.NiceTicks(0.0123, 0.0177, 6), Is.EqualTo(new[] { 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018 }).Within(1e-12));
        Assert.That(LossPlot.NiceTicks(5, 5, 5), Has.Length.GreaterThan(1), "a flat series still gets a range");
    }
}
