using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Checkpoints;

/// <summary>
/// Mutated safetensors files (bit flips, truncations, header edits, duplicated keys, huge lengths) must either load
/// completely or throw <see cref="CheckpointFormatException"/>: no other exception, no hang, no huge allocation.
/// </summary>
public partial class SafeTensorsFuzzTests
{
    const int Inputs = 1500;
    static readonly TimeSpan Budget = TimeSpan.FromSeconds(20);
    static readonly string[] DTypeNames = [.. Enum.GetNames<SafeTensorsDType>(), "F31", "", "f32", "F4", "C64"];
    static readonly string[] Numbers = ["0", "1", "-1", "7", "1.5", "1e3", "4294967296", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "99999999999999999999999", "-0", "null", "\"3\"", "[]"];

    [Test]
    public void FixedSeed() => Run(20240611);

    [Test]
    public void FreshSeed()
    {
        TestSeed.NewRandom();
        TestContext.Out.WriteLine($"fuzz seed {TestSeed.Current} (replay with {TestSeed.EnvironmentVariable}={TestSeed.Current})");
        Run(TestSeed.Current);
    }

    static void Run(int seed)
    {
        var rng = new Random(seed);
        var bases = Enumerable.Range(0, 6).Select(_ => ValidFile(rng)).ToList();
        int loaded = 0, rejected = 0;
        var clock = Stopwatch.StartNew();
        TimeSpan slowest = TimeSpan.Zero;
        for (int i = 0; i < Inputs; i++)
        {
            var (bytes, mutations) = Mutate(rng, bases[rng.Next(bases.Count)]);
            var one = Stopwatch.StartNew();
            try
            {
                SafeTensorsBytes.LoadEverything(bytes, "fuzz.safetensors");
                loaded++;
            }
            catch (CheckpointFormatException e)
            {
                Assert.That(e.Message, Does.StartWith("fuzz.safetensors: "));
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"input {i} (seed {seed}, mutations: {mutations}) threw {e.GetType().Name}: {e.Message}\n" +
                            $"input (base64): {Convert.ToBase64String(bytes[..Math.Min(bytes.Length, 4096)])}\n{e.StackTrace}");
            }
            if (one.Elapsed > slowest) slowest = one.Elapsed;
            if (clock.Elapsed > Budget) Assert.Fail($"fuzzing took over {Budget.TotalSeconds} s by input {i} (seed {seed}); the slowest input took {slowest.TotalMilliseconds:F0} ms");
        }
        TestContext.Out.WriteLine($"seed {seed}: {Inputs} inputs, {loaded} loaded, {rejected} rejected, {clock.ElapsedMilliseconds} ms, slowest {slowest.TotalMilliseconds:F1} ms");
        Assert.That(rejected, Is.GreaterThan(Inputs / 2), $"most mutations should break the file (seed {seed})");
        Assert.That(loaded, Is.GreaterThan(0), $"some mutations (data bit flips) keep the file valid (seed {seed})");
    }

    static byte[] ValidFile(Random rng)
    {
        var w = new SafeTensorsWriter();
        int count = rng.Next(1, 6);
        for (int t = 0; t < count; t++)
        {
            var shape = Enumerable.Range(0, rng.Next(0, 4)).Select(_ => rng.Next(0, 9)).ToArray();
            var values = TestSeed.Uniform(rng, Mdm.Kernels.Shape.Numel(shape));
            string name = $"layer{t}.{(rng.Next(2) == 0 ? "weight" : "bias")}";
            switch (rng.Next(4))
            {
                case 0: w.AddF32(name, shape, values); break;
                case 1: w.AddBF16(name, shape, values); break;
                case 2: w.AddI64(name, shape, values.Select(v => (long)(v * 1000)).ToArray()); break;
                default: w.Add(name, SafeTensorsDType.U8, shape.Select(d => (long)d).ToArray(), values.Select(v => (byte)(v * 100)).ToArray()); break;
            }
        }
        if (rng.Next(2) == 0) w.Metadata["step"] = rng.Next().ToString();
        return w.ToArray();
    }

    static (byte[] Bytes, string Mutations) Mutate(Random rng, byte[] original)
    {
        var bytes = (byte[])original.Clone();   // some mutations edit in place; the base files stay valid
        var applied = new List<string>();
        int rounds = rng.Next(1, 4);
        for (int r = 0; r < rounds; r++)
        {
            int kind = rng.Next(11);
            applied.Add(kind switch
            {
                0 => FlipBit(rng, bytes, anywhere: true),
                1 => FlipBit(rng, bytes, anywhere: false),
                2 => Truncate(rng, ref bytes),
                3 => Append(rng, ref bytes),
                4 => SetHeaderLength(rng, bytes),
                5 => ReplaceHeaderByte(rng, bytes),
                6 => EditHeader(rng, ref bytes, h => ReplaceRandomMatch(rng, h, NumberPattern(), Numbers)),
                7 => EditHeader(rng, ref bytes, h => ReplaceRandomMatch(rng, h, DTypePattern(), DTypeNames.Select(d => $"\"dtype\":\"{d}\"").ToArray())),
                8 => EditHeader(rng, ref bytes, h => DuplicateEntry(rng, h)),
                9 => FlipDataBit(rng, bytes),
                _ => EditHeader(rng, ref bytes, h => DeleteSpan(rng, h)),
            });
        }
        return (bytes, string.Join("; ", applied));
    }

    static string FlipBit(Random rng, byte[] bytes, bool anywhere)
    {
        if (bytes.Length == 0) return "flip (empty)";
        int limit = anywhere ? bytes.Length : Math.Min(bytes.Length, 8 + (int)Math.Min(HeaderLength(bytes), bytes.Length));
        int pos = rng.Next(limit), bit = rng.Next(8);
        bytes[pos] ^= (byte)(1 << bit);
        return $"flip byte {pos} bit {bit}";
    }

    /// <summary>Tensor bytes may hold anything (NaN included): a flip there must still load.</summary>
    static string FlipDataBit(Random rng, byte[] bytes)
    {
        long start = 8 + HeaderLength(bytes);
        if (start >= bytes.Length) return "data flip (no data)";
        int pos = (int)start + rng.Next(bytes.Length - (int)start), bit = rng.Next(8);
        bytes[pos] ^= (byte)(1 << bit);
        return $"data byte {pos} bit {bit}";
    }

    static string Truncate(Random rng, ref byte[] bytes)
    {
        int length = rng.Next(bytes.Length + 1);
        bytes = bytes[..length];
        return $"truncate to {length}";
    }

    static string Append(Random rng, ref byte[] bytes)
    {
        var extra = new byte[rng.Next(1, 16)];
        rng.NextBytes(extra);
        bytes = [.. bytes, .. extra];
        return $"append {extra.Length}";
    }

    static string SetHeaderLength(Random rng, byte[] bytes)
    {
        if (bytes.Length < 8) return "length (too short)";
        ulong n = rng.Next(4) switch
        {
            0 => (ulong)Math.Max(0, (long)HeaderLength(bytes) + rng.Next(-9, 10)),
            1 => (ulong)rng.NextInt64(),
            2 => 1UL << rng.Next(64),
            _ => (ulong)rng.Next(0, 100_000_001),
        };
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, n);
        return $"header length {n}";
    }

    static string ReplaceHeaderByte(Random rng, byte[] bytes)
    {
        long n = HeaderLength(bytes);
        if (bytes.Length <= 8 || n == 0) return "replace (no header)";
        int pos = 8 + rng.Next((int)Math.Min(n, bytes.Length - 8));
        const string significant = "{}[]\",:0123456789-.e\\ \u0001";
        bytes[pos] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)significant[rng.Next(significant.Length)];
        return $"header byte {pos} = 0x{bytes[pos]:X2}";
    }

    /// <summary>Rewrites the header text (when it is still readable) and fixes the length field to match.</summary>
    static string EditHeader(Random rng, ref byte[] bytes, Func<string, (string Header, string What)> edit)
    {
        long n = HeaderLength(bytes);
        if (bytes.Length < 8 || n > bytes.Length - 8) return "edit (header unreadable)";
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        var (edited, what) = edit(header);
        var data = bytes.AsSpan(8 + (int)n).ToArray();
        bytes = SafeTensorsBytes.File(edited, data);
        return what;
    }

    static (string, string) ReplaceRandomMatch(Random rng, string header, Regex pattern, string[] replacements)
    {
        var matches = pattern.Matches(header);
        if (matches.Count == 0) return (header, $"no match for {pattern}");
        var m = matches[rng.Next(matches.Count)];
        string replacement = replacements[rng.Next(replacements.Length)];
        return (header[..m.Index] + replacement + header[(m.Index + m.Length)..], $"'{m.Value}' → '{replacement}'");
    }

    static (string, string) DuplicateEntry(Random rng, string header)
    {
        var matches = EntryPattern().Matches(header);
        if (matches.Count == 0) return (header, "no entry to duplicate");
        var m = matches[rng.Next(matches.Count)];
        return (header[..(m.Index + m.Length)] + "," + m.Value + header[(m.Index + m.Length)..], $"duplicate {m.Value}");
    }

    static (string, string) DeleteSpan(Random rng, string header)
    {
        if (header.Length == 0) return (header, "delete (empty)");
        int start = rng.Next(header.Length), length = rng.Next(1, Math.Min(12, header.Length - start) + 1);
        return (header.Remove(start, length), $"delete [{start}, {start + length})");
    }

    static long HeaderLength(byte[] bytes) => bytes.Length < 8 ? 0 : (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(bytes), long.MaxValue);

    [GeneratedRegex(@"-?\d+")] private static partial Regex NumberPattern();
    [GeneratedRegex("\"dtype\":\"[^\"]*\"")] private static partial Regex DTypePattern();
    [GeneratedRegex("\"[^\"]+\":\\{\"dtype\":[^}]*\\}")] private static partial Regex EntryPattern();
}
