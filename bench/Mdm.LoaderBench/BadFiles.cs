using System.Diagnostics;
using NetVips;

namespace Mdm.LoaderBench;

/// <summary>What each candidate does with a truncated, a corrupt and a bomb-sized JPEG (header claims 60000×60000).</summary>
static class BadFiles
{
    public static void Probe(string dir, ICandidate[] candidates)
    {
        Directory.CreateDirectory(dir);
        using var source = NetVips.Image.NewFromMemory(Fixtures.Picture(7, 500, 375), 500, 375, 3, Enums.BandFormat.Uchar);
        var good = source.JpegsaveBuffer(q: 90);
        var files = new Dictionary<string, byte[]>
        {
            ["truncated"] = good[..(good.Length / 2)],
            ["corrupt"] = Corrupt(good),
            ["bomb"] = Bomb(good, 60000, 60000),
        };
        foreach (var (name, bytes) in files) File.WriteAllBytes(Path.Combine(dir, name + ".jpg"), bytes);
        foreach (var c in candidates)
            foreach (var name in files.Keys)
            {
                var sw = Stopwatch.StartNew();
                long before = Process.GetCurrentProcess().PeakWorkingSet64;
                string outcome;
                try { c.DecodeResize(Path.Combine(dir, name + ".jpg"), 64); outcome = "no error (returned an image)"; }
                catch (Exception e) { outcome = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}"; }
                long peak = Process.GetCurrentProcess().PeakWorkingSet64;
                Console.WriteLine($"{c.Name,-34} {name,-9} {sw.ElapsedMilliseconds,6} ms  peak RSS {peak >> 20} MiB (was {before >> 20})  {outcome}");
            }
    }

    /// <summary>Garbage over the entropy-coded middle third.</summary>
    static byte[] Corrupt(byte[] good)
    {
        var bytes = (byte[])good.Clone();
        var rng = new Random(3);
        for (int i = bytes.Length / 3; i < 2 * bytes.Length / 3; i++) bytes[i] = (byte)rng.Next(256);
        return bytes;
    }

    /// <summary>The same JPEG with its frame header (SOF0/SOF2) claiming <paramref name="w"/>×<paramref name="h"/>.</summary>
    public static byte[] Bomb(byte[] good, int w, int h)
    {
        var bytes = (byte[])good.Clone();
        for (int i = 2; i + 9 < bytes.Length; i++)
            if (bytes[i] == 0xFF && bytes[i + 1] is 0xC0 or 0xC2)
            {
                (bytes[i + 5], bytes[i + 6], bytes[i + 7], bytes[i + 8]) = ((byte)(h >> 8), (byte)h, (byte)(w >> 8), (byte)w);
                return bytes;
            }
        throw new InvalidDataException("no SOF marker");
    }
}
