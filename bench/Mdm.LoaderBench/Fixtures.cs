using NetVips;

namespace Mdm.LoaderBench;

/// <summary>ImageNet-sized test images with varied content (gradients, shapes, noise, stripes), from a fixed seed.</summary>
static class Fixtures
{
    static readonly (int W, int H)[] Sizes = [(500, 375), (375, 500), (500, 333), (500, 400), (480, 360)];

    public static byte[] Picture(int index, int w, int h)
    {
        var rng = new Random(index);
        var px = new byte[w * h * 3];
        double fx = rng.NextDouble() * 0.05, fy = rng.NextDouble() * 0.05, noise = rng.Next(0, 40);
        var shapes = Enumerable.Range(0, 6).Select(_ => (X: rng.Next(w), Y: rng.Next(h), R: rng.Next(20, 120), C: rng.Next(0xFFFFFF))).ToArray();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = 3 * (y * w + x);
                double stripe = 127 + 127 * Math.Sin(x * fx + y * fy);
                px[o] = (byte)(x * 255 / w);
                px[o + 1] = (byte)stripe;
                px[o + 2] = (byte)(y * 255 / h);
                foreach (var s in shapes)
                    if ((x - s.X) * (x - s.X) + (y - s.Y) * (y - s.Y) < s.R * s.R)
                        (px[o], px[o + 1], px[o + 2]) = ((byte)(s.C >> 16), (byte)(s.C >> 8), (byte)s.C);
                for (int c = 0; c < 3; c++) px[o + c] = (byte)Math.Clamp(px[o + c] + rng.Next(-(int)noise, (int)noise + 1), 0, 255);
            }
        return px;
    }

    public static void GenerateJpegs(string dir, int count)
    {
        Directory.CreateDirectory(dir);
        Parallel.For(0, count, i =>
        {
            var (w, h) = Sizes[i % Sizes.Length];
            using var image = NetVips.Image.NewFromMemory(Picture(i, w, h), w, h, 3, Enums.BandFormat.Uchar);
            image.Jpegsave(Path.Combine(dir, $"{i:D5}.jpg"), q: 85 + i % 10, interlace: i % 2 == 1);   // odd: progressive
        });
    }

    public static string[] GeneratePngs(string dir, int count)
    {
        Directory.CreateDirectory(dir);
        return [.. Enumerable.Range(0, count).AsParallel().Select(i =>
        {
            string path = Path.Combine(dir, $"{i:D5}.png");
            using var image = NetVips.Image.NewFromMemory(Picture(i, 500, 375), 500, 375, 3, Enums.BandFormat.Uchar);
            image.Pngsave(path);
            return path;
        }).Order()];
    }
}
