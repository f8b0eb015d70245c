using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

/// <summary>
/// Mutated files must either decode or throw the documented exception (ImageFormatException for PNG,
/// DataFormatException for IDX), quickly. One run with a fixed seed, one with a fresh seed (printed).
/// Mutations range from blind byte damage (mostly caught by CRCs) to damage with repaired CRCs and damage inside
/// the decompressed data, so every stage of the decoders is reached.
/// </summary>
public class FuzzTests
{
    const int FixedCases = 1200, FreshCases = 20_000;   // ~1 ms per 50 cases: the fresh run digs deeper each time
    const int FixedSeed = 20231027;
    static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);

    static int SeedFor(int? fixedSeed)
    {
        if (fixedSeed is int f) return f;
        TestSeed.NewRandom();
        return TestSeed.Current;
    }

    [TestCase(FixedSeed, FixedCases), TestCase(null, FreshCases)]
    public void MutatedPngsDecodeOrThrowImageFormatException(int? fixedSeed, int cases)
    {
        int seed = SeedFor(fixedSeed);
        TestContext.Out.WriteLine($"PNG fuzz seed {seed} (replay with {TestSeed.EnvironmentVariable}={seed})");
        var rng = new Random(seed);
        var bases = new List<byte[]>();
        foreach (var (type, depth, interlaced) in new[] { (0, 1, false), (0, 16, true), (2, 8, false), (3, 4, false), (3, 8, true), (4, 8, false), (6, 8, true), (6, 16, false) })
            bases.Add(PngBuilder.Build(PngBuilder.Random(rng, rng.Next(1, 17), rng.Next(1, 17), type, depth, interlaced), rng));
        var encoded = new RgbaImage(11, 7);
        rng.NextBytes(encoded.Pixels);
        bases.Add(Png.Encode(encoded));

        var counts = Run(seed, cases, i =>
        {
            var file = bases[rng.Next(bases.Count)];
            var (mutated, how) = MutatePng(rng, file);
            try
            {
                var image = Png.Decode(mutated, $"fuzz-{i}.png");
                Assert.That(image.Pixels, Has.Length.EqualTo(4L * image.Width * image.Height), $"case {i} ({how}): pixel buffer size");
                return "decoded";
            }
            catch (ImageFormatException e)
            {
                Assert.That(e.Message, Does.StartWith($"PNG 'fuzz-{i}.png': "), $"case {i} ({how})");
                return "rejected: " + Kind(e.Message[$"PNG 'fuzz-{i}.png': ".Length..]);
            }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"case {i} ({how}) threw {e.GetType().Name}: {e.Message}  (seed {seed})");
                return "";
            }
        });
        Report(counts, cases);
    }

    [TestCase(FixedSeed, FixedCases), TestCase(null, FreshCases)]
    public void MutatedIdxFilesReadOrThrowDataFormatException(int? fixedSeed, int cases)
    {
        int seed = SeedFor(fixedSeed);
        TestContext.Out.WriteLine($"IDX fuzz seed {seed} (replay with {TestSeed.EnvironmentVariable}={seed})");
        var rng = new Random(seed);
        var pixels = new byte[5 * 7 * 6];
        rng.NextBytes(pixels);
        var images = Idx.Write([5, 7, 6], pixels);
        var labels = Idx.Write([9], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        var bases = new[] { (images, true), (labels, false), (Gzip(images), true), (Gzip(labels), false) };

        var counts = Run(seed, cases, i =>
        {
            var (file, isImages) = bases[rng.Next(bases.Length)];
            var (mutated, how) = MutateIdx(rng, file);
            bool readAsImages = rng.Next(4) == 0 ? !isImages : isImages;   // sometimes the wrong kind of file
            try
            {
                if (readAsImages)
                {
                    var read = Idx.ReadImages(mutated, $"fuzz-{i}");
                    Assert.That(read.Pixels, Has.Length.EqualTo((long)read.Count * read.Rows * read.Columns), $"case {i} ({how})");
                }
                else Idx.ReadLabels(mutated, $"fuzz-{i}");
                return "read";
            }
            catch (DataFormatException e)
            {
                Assert.That(e.Message, Does.StartWith($"'fuzz-{i}': "), $"case {i} ({how})");
                return "rejected: " + Kind(e.Message[$"'fuzz-{i}': ".Length..]);
            }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"case {i} ({how}) threw {e.GetType().Name}: {e.Message}  (seed {seed})");
                return "";
            }
        });
        Report(counts, cases);
    }

    /// <summary>Prints how often each kind of problem was found, so a reader can see which checks the mutations reach.</summary>
    static void Report(Dictionary<string, int> counts, int cases)
    {
        foreach (var (kind, n) in counts.OrderByDescending(kv => kv.Value)) TestContext.Out.WriteLine($"  {n,5}  {kind}");
        int rejected = counts.Where(kv => kv.Key.StartsWith("rejected")).Sum(kv => kv.Value);
        Assert.That(rejected, Is.GreaterThan(cases / 4), "mutations should mostly be caught");
        Assert.That(counts.Count(kv => kv.Key.StartsWith("rejected")), Is.GreaterThan(5), "the mutations should reach many different checks");
    }

    /// <summary>The message up to its first number or quote: the kind of problem without the details.</summary>
    static string Kind(string problem)
    {
        int end = problem.IndexOfAny("0123456789'(".ToCharArray());
        return (end < 0 ? problem : problem[..end]).Trim();
    }

    /// <summary>Runs the cases on a worker so a hang fails the test instead of stalling the suite.</summary>
    static Dictionary<string, int> Run(int seed, int cases, Func<int, string> oneCase)
    {
        var counts = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        var work = Task.Run(() =>
        {
            for (int i = 0; i < cases; i++)
            {
                string outcome = oneCase(i);
                counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
            }
        });
        if (Task.WhenAny(work, Task.Delay(Budget)).Result != work) Assert.Fail($"fuzzing did not finish within {Budget.TotalSeconds} s (hang?)  seed {seed}");
        work.GetAwaiter().GetResult();
        TestContext.Out.WriteLine($"{cases} cases in {clock.ElapsedMilliseconds} ms");
        return counts;
    }

    static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var z = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    static readonly byte[] Interesting = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x08, 0x03];

    /// <summary>Blind damage: bit flips, byte overwrites, truncation, insertion, deletion.</summary>
    static (byte[], string) Blind(Random rng, byte[] file)
    {
        var f = (byte[])file.Clone();
        switch (rng.Next(5))
        {
            case 0:
                for (int k = rng.Next(1, 5); k > 0; k--) f[rng.Next(f.Length)] ^= (byte)(1 << rng.Next(8));
                return (f, "bit flips");
            case 1:
                for (int k = rng.Next(1, 4); k > 0; k--) f[rng.Next(f.Length)] = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(256);
                return (f, "byte overwrites");
            case 2:
                return (f[..rng.Next(f.Length)], "truncation");
            case 3:
            {
                int at = rng.Next(f.Length + 1);
                var extra = new byte[rng.Next(1, 9)];
                rng.NextBytes(extra);
                return ([.. f[..at], .. extra, .. f[at..]], "insertion");
            }
            default:
            {
                int at = rng.Next(f.Length), n = rng.Next(1, Math.Min(9, f.Length - at + 1));
                return ([.. f[..at], .. f[(at + n)..]], "deletion");
            }
        }
    }

    static (byte[], string) MutatePng(Random rng, byte[] file)
    {
        int kind = rng.Next(10);
        if (kind < 3) return Blind(rng, file);
        var chunks = PngBuilder.Chunks(file);
        switch (kind)
        {
            case 3 or 4:
            {
                // Damage a chunk's data (IHDR fields, palette, tRNS, compressed bytes) and repair its CRC.
                int c = rng.Next(chunks.Count - 1);
                var data = (byte[])chunks[c].Data.Clone();
                if (data.Length == 0) return (file, "no-op");
                for (int k = rng.Next(1, 4); k > 0; k--)
                    data[rng.Next(data.Length)] = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(256);
                chunks[c] = (chunks[c].Type, data);
                return (PngBuilder.Assemble(chunks), $"{chunks[c].Type} data with valid CRC");
            }
            case 5 or 6:
            {
                // Damage the decompressed scanlines (filter bytes, samples, palette indices) and recompress.
                var idat = chunks.Where(c => c.Type == "IDAT").SelectMany(c => c.Data).ToArray();
                byte[] raw;
                using (var z = new ZLibStream(new MemoryStream(idat), CompressionMode.Decompress)) { var m = new MemoryStream(); z.CopyTo(m); raw = m.ToArray(); }
                if (rng.Next(3) == 0) raw = raw[..rng.Next(raw.Length + 1)];
                else for (int k = rng.Next(1, 4); k > 0 && raw.Length > 0; k--) raw[rng.Next(raw.Length)] = (byte)rng.Next(256);
                var rest = chunks.Where(c => c.Type != "IDAT" && c.Type != "IEND").ToList();
                return (PngBuilder.Assemble([.. rest, ("IDAT", PngBuilder.Deflate(raw)), ("IEND", [])]), "scanlines recompressed");
            }
            case 7:
            {
                // Drop, duplicate or swap whole chunks.
                int a = rng.Next(chunks.Count), b = rng.Next(chunks.Count);
                switch (rng.Next(3))
                {
                    case 0: chunks.RemoveAt(a); break;
                    case 1: chunks.Insert(b, chunks[a]); break;
                    default: (chunks[a], chunks[b]) = (chunks[b], chunks[a]); break;
                }
                return (PngBuilder.Assemble(chunks), "chunk order");
            }
            case 8:
            {
                // IHDR with random but CRC-valid fields: size, depth, colour type, interlace.
                var ihdr = (byte[])chunks[0].Data.Clone();
                int field = rng.Next(5);
                if (field == 0) BinaryPrimitives.WriteInt32BigEndian(ihdr, rng.Next(2) == 0 ? rng.Next(1, 40) : rng.Next());
                else if (field == 1) BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), rng.Next(2) == 0 ? rng.Next(1, 40) : rng.Next());
                else ihdr[field == 2 ? 8 : field == 3 ? 9 : 12] = (byte)rng.Next(20);
                chunks[0] = ("IHDR", ihdr);
                return (PngBuilder.Assemble(chunks), "IHDR field with valid CRC");
            }
            default:
            {
                // A chunk length field changed (CRC then covers the wrong bytes or runs past the end).
                var f = (byte[])file.Clone();
                int pos = 8;
                for (int c = rng.Next(chunks.Count), k = 0; k < c; k++) pos += 12 + chunks[k].Data.Length;
                BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(pos), rng.Next(2) == 0 ? (uint)rng.Next(64) : (uint)rng.NextInt64(uint.MaxValue));
                return (f, "chunk length");
            }
        }
    }

    static (byte[], string) MutateIdx(Random rng, byte[] file)
    {
        bool gzip = file[0] == 0x1F;
        int kind = rng.Next(6);
        if (kind < 3) return Blind(rng, file);
        var plain = gzip ? Gunzip(file) : (byte[])file.Clone();
        string how;
        if (kind == 3)
        {
            // Header fields: type, rank or one dimension.
            int at = rng.Next(Math.Min(plain.Length, 16));
            plain[at] = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(256);
            how = $"header byte {at}";
        }
        else if (kind == 4)
        {
            int delta = rng.Next(-3, 4);
            plain = delta < 0 ? plain[..Math.Max(0, plain.Length + delta)] : [.. plain, .. new byte[delta]];
            how = $"length {delta:+0;-0;0}";
        }
        else
        {
            int dims = plain[3], d = rng.Next(Math.Max(1, dims));
            if (4 + 4 * d + 4 <= plain.Length) BinaryPrimitives.WriteInt32BigEndian(plain.AsSpan(4 + 4 * d), rng.Next(2) == 0 ? rng.Next(12) : rng.Next());
            how = $"dimension {d}";
        }
        return (gzip ? Gzip(plain) : plain, how + (gzip ? " (gz)" : ""));
    }

    static byte[] Gunzip(byte[] file)
    {
        using var z = new GZipStream(new MemoryStream(file), CompressionMode.Decompress);
        var m = new MemoryStream();
        z.CopyTo(m);
        return m.ToArray();
    }
}
