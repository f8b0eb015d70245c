using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class ShapesTests
{
    [Test]
    public void SameSeedSameImagesAnyOrder()
    {
        var rng = TestSeed.NewRandom();
        long seed = rng.NextInt64();
        int size = rng.Next(8, 40);
        IDataset a = new ShapesDataset(size, 500, seed), b = new ShapesDataset(size, 500, seed), c = new ShapesDataset(size, 500, seed + 1);
        int differing = 0;
        foreach (int i in new[] { 499, 3, 250, 0, 17 })   // random access, any order
        {
            var x = a.Load(i);
            Assert.That(b.Load(i).Values, Is.EqualTo(x.Values), $"sample {i}, size {size}" + TestSeed.Describe());
            Assert.That(a.Load(i).Values, Is.EqualTo(x.Values), "reloading");
            if (!c.Load(i).Values.SequenceEqual(x.Values)) differing++;
        }
        Assert.That(differing, Is.EqualTo(5), "another seed gives other images");
    }

    [Test]
    public void ClassesAreExactlyBalancedAndValuesInRange()
    {
        var set = new ShapesDataset(16, 6 * 50 + 3, seed: TestSeed.NewRandom().Next());
        var labels = Enumerable.Range(0, set.Count).Select(i => ((IDataset)set).Load(i)).ToList();
        var counts = labels.GroupBy(s => s.Label).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(counts.Keys.Order(), Is.EqualTo(Enumerable.Range(0, 6)));
        Assert.That(counts.Values.Max() - counts.Values.Min(), Is.LessThanOrEqualTo(1), "balanced" + TestSeed.Describe());
        Assert.That(set.ClassNames, Is.EqualTo(new[] { "circle", "square", "triangle", "ring", "cross", "stripes" }));
        Assert.That(labels.SelectMany(s => s.Values).All(v => v is >= -1f and <= 1f), "values in [-1, 1]");
    }

    [Test]
    public void ShapesAreLargeExactlyCentredAndFromThePalette()
    {
        var rng = TestSeed.NewRandom();
        int size = rng.Next(ShapesDataset.MinImageSize, 80);
        var set = new ShapesDataset(size, 600, rng.NextInt64());
        var foregrounds = new HashSet<(byte, byte, byte)>();
        var backgrounds = new HashSet<(byte, byte, byte)>();
        for (int i = 0; i < set.Count; i++)
        {
            var s = set.Spec(i);
            string where = $"sample {i} of size {size}: r {s.Radius:F2}, centre ({s.CenterX:F2}, {s.CenterY:F2})" + TestSeed.Describe();
            Assert.That(s.Radius / size, Is.InRange(ShapesDataset.MinRadius, ShapesDataset.MaxRadius), where);
            Assert.That((s.CenterX, s.CenterY), Is.EqualTo((size / 2.0, size / 2.0)), "exactly centred: " + where);
            Assert.That(s.CenterX - s.Radius >= 0 && s.CenterX + s.Radius <= size && s.CenterY - s.Radius >= 0 && s.CenterY + s.Radius <= size,
                        "inside the image: " + where);
            Assert.That(ShapesDataset.Foregrounds, Does.Contain(s.Foreground), where);
            Assert.That(ShapesDataset.Backgrounds, Does.Contain(s.Background), where);
            foregrounds.Add(s.Foreground); backgrounds.Add(s.Background);
        }
        Assert.That(foregrounds, Has.Count.EqualTo(ShapesDataset.Foregrounds.Count), "every foreground is used" + TestSeed.Describe());
        Assert.That(backgrounds, Has.Count.EqualTo(ShapesDataset.Backgrounds.Count), "every background is used" + TestSeed.Describe());
    }

    [Test]
    public void EveryPaletteColourPairStandsOutInColourAndInGray()
    {
        foreach (var fg in ShapesDataset.Foregrounds)
            foreach (var bg in ShapesDataset.Backgrounds)
            {
                double dr = fg.R - bg.R, dg = fg.G - bg.G, db = fg.B - bg.B;
                Assert.That(Math.Sqrt(dr * dr + dg * dg + db * db), Is.GreaterThanOrEqualTo(150), $"RGB distance of {fg} on {bg}");
                Assert.That(Math.Abs(0.299 * dr + 0.587 * dg + 0.114 * db), Is.GreaterThanOrEqualTo(50), $"luma difference of {fg} on {bg}");
            }
    }

    /// <summary>Coverage of a pixel: 1 = foreground colour, 0 = background (from the channel where they differ most).</summary>
    static double Coverage(float[] values, ShapeSpec s, int size, int x, int y)
    {
        int c = Enumerable.Range(0, 3).MaxBy(c => Math.Abs(Channel(s.Foreground, c) - Channel(s.Background, c)));
        double fg = Channel(s.Foreground, c) / 127.5 - 1, bg = Channel(s.Background, c) / 127.5 - 1;
        return (values[c * size * size + y * size + x] - bg) / (fg - bg);
    }

    static int Channel((byte R, byte G, byte B) rgb, int c) => c == 0 ? rgb.R : c == 1 ? rgb.G : rgb.B;

    [Test]
    public void EachClassHasItsDistinguishingFeature()
    {
        const int size = 48;
        var set = new ShapesDataset(size, 240, TestSeed.NewRandom().Next());
        for (int i = 0; i < set.Count; i++)
        {
            var s = set.Spec(i);
            var v = ((IDataset)set).Load(i).Values;
            double At(double dx, double dy) => Coverage(v, s, size, (int)Math.Floor(s.CenterX + dx * s.Radius), (int)Math.Floor(s.CenterY + dy * s.Radius));
            string where = $"sample {i} ({s.Kind}, r {s.Radius:F1})" + TestSeed.Describe();
            double total = Enumerable.Range(0, size * size).Sum(p => Coverage(v, s, size, p % size, p / size));
            // Foreground area relative to the bounding box (2r)²: circle π/4, square 1, triangle 1/2, ring π/4 · 0.64,
            // cross 2 · 0.4 − 0.04 = 0.76 of the half-box strip pair, stripes 3/5.
            double area = total / (4 * s.Radius * s.Radius);
            double expected = s.Kind switch
            {
                ShapeKind.Circle => Math.PI / 4, ShapeKind.Square => 1, ShapeKind.Triangle => 0.5,
                ShapeKind.Ring => Math.PI / 4 * 0.64, ShapeKind.Cross => (2 * 2 * 0.4 - 0.4 * 0.4) / 4, ShapeKind.Stripes => 0.6,
                _ => throw new ArgumentOutOfRangeException(nameof(s), s.Kind, "unknown shape"),
            };
            Assert.That(area, Is.EqualTo(expected).Within(0.04), "foreground area relative to the bounding box " + where);
            // Every class reaches its bounding box: foreground in the last pixel row or column the box touches.
            Assert.That(At(0, 0.97), Is.GreaterThan(0.3), "reaches the bottom edge " + where);
            switch (s.Kind)
            {
                case ShapeKind.Circle: Assert.That(At(0, 0), Is.EqualTo(1).Within(1e-3), where); Assert.That(At(0.8, 0.8), Is.EqualTo(0).Within(1e-3), "no corner " + where); break;
                case ShapeKind.Square: Assert.That(At(0.9, 0.9), Is.EqualTo(1).Within(1e-3), "a filled corner " + where); Assert.That(At(-0.9, -0.9), Is.EqualTo(1).Within(1e-3), where); break;
                case ShapeKind.Triangle:
                    Assert.That(At(0, 0.5), Is.EqualTo(1).Within(1e-3), where);
                    Assert.That(At(0.9, 0.9), Is.EqualTo(1).Within(1e-3), "the base spans the box " + where);
                    Assert.That(At(-0.6, -0.6), Is.EqualTo(0).Within(1e-3), "no upper corner " + where);
                    break;
                case ShapeKind.Ring: Assert.That(At(0, 0), Is.EqualTo(0).Within(1e-3), where); Assert.That(At(0.8, 0), Is.EqualTo(1).Within(1e-3), where); break;
                case ShapeKind.Cross:
                    Assert.That(At(0, 0), Is.EqualTo(1).Within(1e-3), where);
                    Assert.That(At(0.9, 0), Is.EqualTo(1).Within(1e-3), "an arm reaches the box's edge " + where);
                    Assert.That(At(0.4, 0.4), Is.EqualTo(0).Within(1e-3), "arms are thin " + where);
                    break;
                case ShapeKind.Stripes:
                    var (bar, gap) = s.Horizontal ? ((0.0, -0.8), (0.0, -0.4)) : ((-0.8, 0.0), (-0.4, 0.0));
                    Assert.That(At(bar.Item1, bar.Item2), Is.EqualTo(1).Within(1e-3), "outer bar " + where);
                    Assert.That(At(gap.Item1, gap.Item2), Is.EqualTo(0).Within(1e-3), "first gap " + where);
                    break;
            }
        }
    }

    [Test]
    public void MovingShapeKeepsConstantVelocityInsideTheFrame()
    {
        var rng = TestSeed.NewRandom();
        int size = 32, frames = rng.Next(3, 9);
        var clips = new MovingShapesDataset(size, frames, 40, rng.Next());
        Assert.That(clips.SampleShape, Is.EqualTo(new[] { frames, 3, size, size }));
        for (int i = 0; i < clips.Count; i++)
        {
            var v = ((IDataset)clips).Load(i).Values;
            var centroids = new List<(double X, double Y)>();
            for (int f = 0; f < frames; f++)
            {
                var s = clips.Spec(i, f);
                Assert.That(s.CenterX - s.Radius >= 0 && s.CenterX + s.Radius <= size && s.CenterY - s.Radius >= 0 && s.CenterY + s.Radius <= size,
                            $"clip {i} frame {f} leaves the frame" + TestSeed.Describe());
                var frame = v.AsSpan(f * 3 * size * size, 3 * size * size).ToArray();
                double sum = 0, sx = 0, sy = 0;
                for (int p = 0; p < size * size; p++)
                {
                    double c = Coverage(frame, s, size, p % size, p / size);
                    (sum, sx, sy) = (sum + c, sx + c * (p % size + 0.5), sy + c * (p / size + 0.5));
                }
                centroids.Add((sx / sum, sy / sum));
            }
            // The specified centre moves by the same step every frame ...
            var first = clips.Spec(i, 0);
            var step = frames > 1 ? (clips.Spec(i, 1).CenterX - first.CenterX, clips.Spec(i, 1).CenterY - first.CenterY) : (0.0, 0.0);
            // ... and so does the drawn shape: its centroid stays within 0.5 px (4 x 4 sub-pixel sampling of 2 px stripes) of the
            // straight line first centroid + f * step.
            for (int f = 0; f < frames; f++)
            {
                var spec = clips.Spec(i, f);
                Assert.That(spec.CenterX - first.CenterX, Is.EqualTo(f * step.Item1).Within(1e-9), $"clip {i} frame {f}: x velocity");
                Assert.That(spec.CenterY - first.CenterY, Is.EqualTo(f * step.Item2).Within(1e-9), $"clip {i} frame {f}: y velocity");
                double ex = centroids[f].X - (centroids[0].X + f * step.Item1), ey = centroids[f].Y - (centroids[0].Y + f * step.Item2);
                Assert.That(Math.Sqrt(ex * ex + ey * ey), Is.LessThan(0.5), $"clip {i} ({spec.Kind}) frame {f}: drawn shape off its path" + TestSeed.Describe());
            }
        }
    }
}
