using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Checkpoints;

/// <summary>The exact byte layout of the reference writer (interop with Python safetensors) and round trips of every dtype.</summary>
public class SafeTensorsFormatTests
{
    Random rng = null!;
    [SetUp] public void FreshSeed() => rng = TestSeed.NewRandom();

    static byte[] Expected(string header, byte[] data) => SafeTensorsBytes.File(header, data);

    // The reference implementation's own serialization vectors (tensor.rs tests), rebuilt from their JSON text.
    [Test]
    public void SingleTensorMatchesReferenceLayout()
    {
        var w = new SafeTensorsWriter().AddF32("attn.0", [1, 2, 3], [0, 1, 2, 3, 4, 5]);
        const string header = """{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}""";
        Assert.That(header.Length, Is.EqualTo(64), "the reference vector needs no padding");
        Assert.That(w.ToArray(), Is.EqualTo(Expected(header, SafeTensorsBytes.F32(0, 1, 2, 3, 4, 5))));
    }

    [Test]
    public void HeaderIsPaddedWithSpacesToAMultipleOf8()
    {
        var bytes = new SafeTensorsWriter().AddF32("attn0", [1, 1, 2, 3], [0, 1, 2, 3, 4, 5]).ToArray();
        const string json = """{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}""";
        Assert.That(bytes, Is.EqualTo(Expected(json + new string(' ', 7), SafeTensorsBytes.F32(0, 1, 2, 3, 4, 5))));
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(bytes), Is.EqualTo(72));
    }

    [Test]
    public void EmptyFileAndMetadataOnlyMatchReference()
    {
        Assert.That(new SafeTensorsWriter().ToArray(), Is.EqualTo(Expected("{}      ", [])));
        var w = new SafeTensorsWriter();
        w.Metadata["framework"] = "pt";
        Assert.That(w.ToArray(), Is.EqualTo(Expected("""{"__metadata__":{"framework":"pt"}}     """, [])));
    }

    [Test]
    public void TensorsAreOrderedByDTypeAlignmentThenNameAndStayAligned()
    {
        var w = new SafeTensorsWriter();
        w.Metadata["step"] = "12";
        w.Metadata["a"] = "x";
        w.AddF32("b", [2], [1.5f, -2f]);
        w.AddBF16("a", [3], [1f, 2f, 3f]);
        w.AddI64("c", [], [-7]);
        w.Add("z", SafeTensorsDType.U8, [5], [1, 2, 3, 4, 5]);
        w.Add("y", SafeTensorsDType.F16, [1], BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)0.5f)));
        w.Add("x", SafeTensorsDType.I32, [0], []);
        w.AddF32("B", [1], [9f]);   // upper case sorts before lower case (byte order)
        string json = """{"__metadata__":{"a":"x","step":"12"},""" +
                      "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}," +
                      "\"B\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}," +
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}," +
                      "\"x\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[20,20]}," +
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[20,26]}," +
                      "\"y\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[26,28]}," +
                      "\"z\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[28,33]}}";
        json += new string(' ', (8 - json.Length % 8) % 8);
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes(-7L));
        data.AddRange(SafeTensorsBytes.F32(9f, 1.5f, -2f));
        data.AddRange(new byte[] { 0x80, 0x3F, 0x00, 0x40, 0x40, 0x40 });   // bf16 1, 2, 3
        data.AddRange(new byte[] { 0x00, 0x38 });                           // f16 0.5
        data.AddRange(new byte[] { 1, 2, 3, 4, 5 });
        var bytes = w.ToArray();
        Assert.That(Encoding.UTF8.GetString(bytes, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes)), Is.EqualTo(json));
        Assert.That(bytes, Is.EqualTo(Expected(json, data.ToArray())));
        using var f = SafeTensorsBytes.Open(bytes);
        foreach (var e in f.Entries)
            Assert.That((f.DataStart + e.Begin) % e.DType.Size(), Is.Zero, $"{e} is not aligned to its element size");
    }

    [Test]
    public void F32RoundTripIsBitExactIncludingSpecialValues()
    {
        int[] shape = [3, 5, 7];
        var values = TestSeed.Uniform(rng, 105, -1e4f, 1e4f);
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue, -float.MinValue, 1e-40f];
        specials.CopyTo(values, 0);
        var bytes = new SafeTensorsWriter().AddF32("w", shape, values).ToArray();
        using var f = SafeTensorsBytes.Open(bytes);
        var e = f.Entry("w");
        Assert.That((e.DType, e.Shape, e.ByteCount), Is.EqualTo((SafeTensorsDType.F32, new long[] { 3, 5, 7 }, 420L)));
        var back = f.ReadF32("w");
        for (int i = 0; i < values.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(back[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(values[i])),
                $"element {i}: wrote {values[i]:R}, read {back[i]:R}\n{TestSeed.Describe()}");
    }

    [Test]
    public void BF16RoundsToNearestEven()
    {
        // 1 + 2^-8 is a tie with an even lower neighbour (rounds down); 1 + 3·2^-8 a tie with an odd one (rounds up).
        float[] known = [1f, MathF.PI, 1f + 1f / 256, 1f + 3f / 256, -2.5f, 65504f, float.PositiveInfinity, -0f];
        ushort[] expected = [0x3F80, 0x4049, 0x3F80, 0x3F82, 0xC020, 0x4780, 0x7F80, 0x8000];
        var random = TestSeed.Uniform(rng, 257, -100f, 100f);
        var values = known.Concat(random).ToArray();
        var bytes = new SafeTensorsWriter().AddBF16("h", [values.Length], values).ToArray();
        using var f = SafeTensorsBytes.Open(bytes);
        Assert.That(f.Entry("h").DType, Is.EqualTo(SafeTensorsDType.BF16));
        var bits = f.ReadBF16Bits("h");
        var raw = f.ReadBytes("h");
        Assert.That(bits[..known.Length], Is.EqualTo(expected), "known BF16 patterns");
        var asFloat = f.ReadF32("h");
        for (int i = 0; i < values.Length; i++)
        {
            Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(values[i])), $"element {i} = {values[i]:R}\n{TestSeed.Describe()}");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i)), Is.EqualTo(bits[i]), "BF16 is stored little-endian");
            Assert.That(asFloat[i], Is.EqualTo(BFloat16.ToFloat(bits[i])));
            if (float.IsFinite(values[i]) && values[i] != 0)
                Assert.That(Math.Abs(asFloat[i] - values[i]), Is.LessThanOrEqualTo(Math.Abs(values[i]) / 256), $"element {i} error above 2^-8");
        }
    }

    [Test]
    public void ScalarsAndEmptyTensorsRoundTrip()
    {
        var w = new SafeTensorsWriter().AddF32("scalar", [], [3.25f]).AddI64("step", [], [1L << 40])
            .AddF32("empty", [0], []).AddF32("empty3d", [2, 0, 3], []).AddBF16("empty_bf16", [0, 4], []);
        using var f = SafeTensorsBytes.Open(w.ToArray());
        Assert.That(f.Entry("scalar").Rank, Is.Zero);
        Assert.That(f.Entry("scalar").Numel, Is.EqualTo(1));
        Assert.That(f.ReadF32("scalar"), Is.EqualTo(new[] { 3.25f }));
        Assert.That(f.ReadInt64("step"), Is.EqualTo(new[] { 1L << 40 }));
        foreach (var name in new[] { "empty", "empty3d", "empty_bf16" })
        {
            Assert.That(f.Entry(name).ByteCount, Is.Zero, name);
            Assert.That(f.ReadF32(name), Is.Empty, name);
        }
        Assert.That(f.Entry("empty3d").Shape, Is.EqualTo(new long[] { 2, 0, 3 }));
        using var onlyEmpty = SafeTensorsBytes.Open(new SafeTensorsWriter().AddF32("e", [0], []).ToArray());
        Assert.That(onlyEmpty.Entries, Has.Count.EqualTo(1));
    }

    [Test]
    public void UnicodeNamesAndMetadataRoundTripAsPlainUtf8Json()
    {
        string[] names = ["ünïcødé.权重", "emoji.🙂.bias", "quote\"back\\slash", "tab\tnew\nline\u0001", "a"];
        var w = new SafeTensorsWriter();
        for (int i = 0; i < names.Length; i++) w.AddF32(names[i], [1], [i]);
        w.Metadata["config"] = """{"unet":{"channels":[64,128]},"note":"line1\nline2"}""";
        w.Metadata["ключ"] = "значение ✓";
        w.Metadata["empty"] = "";
        var bytes = w.ToArray();
        var headerText = Encoding.UTF8.GetString(bytes, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.That(headerText, Does.Contain("\"ünïcødé.权重\"").And.Contain("🙂"), "non-ASCII is written raw, as serde_json does");
        Assert.That(headerText, Does.Contain("\"tab\\tnew\\nline\\u0001\""), "control characters are escaped");
        using (var doc = JsonDocument.Parse(headerText.TrimEnd(' ')))
            Assert.That(doc.RootElement.EnumerateObject().Count(), Is.EqualTo(names.Length + 1), "standard JSON parsers read the header");
        using var f = SafeTensorsBytes.Open(bytes);
        for (int i = 0; i < names.Length; i++) Assert.That(f.ReadF32(names[i]), Is.EqualTo(new[] { (float)i }), names[i]);
        Assert.That(f.Metadata, Is.EquivalentTo(w.Metadata));
    }

    [Test]
    public void ReadsOtherDTypesConvertingToF32()
    {
        var parts = new (string Name, string DType, string Shape, byte[] Data, float[] Expected)[]
        {
            ("f64", "F64", "[2]", [.. BitConverter.GetBytes(0.1), .. BitConverter.GetBytes(-1e300)], [0.1f, float.NegativeInfinity]),
            ("i64", "I64", "[2]", [.. BitConverter.GetBytes(-5L), .. BitConverter.GetBytes(1L << 53)], [-5f, 9007199254740992f]),
            ("u64", "U64", "[1]", BitConverter.GetBytes(7UL), [7f]),
            ("f32", "F32", "[1]", SafeTensorsBytes.F32(2.5f), [2.5f]),
            ("i32", "I32", "[2]", [.. BitConverter.GetBytes(-123), .. BitConverter.GetBytes(int.MaxValue)], [-123f, 2147483648f]),
            ("u32", "U32", "[1]", BitConverter.GetBytes(4000000000u), [4e9f]),
            ("f16", "F16", "[3]", [.. Half16(0.5f), .. Half16(-65504f), .. Half16(6e-8f)], [0.5f, -65504f, (float)(Half)6e-8f]),
            ("bf16", "BF16", "[1]", [0x49, 0x40], [BFloat16.ToFloat(0x4049)]),
            ("i16", "I16", "[1]", BitConverter.GetBytes((short)-300), [-300f]),
            ("u16", "U16", "[1]", BitConverter.GetBytes((ushort)60000), [60000f]),
            ("u8", "U8", "[2]", [0, 255], [0f, 255f]),
            ("i8", "I8", "[2]", [0x80, 0x7F], [-128f, 127f]),
            ("bool", "BOOL", "[3]", [0, 1, 2], [0f, 1f, 1f]),
            ("e5m2", "F8_E5M2", "[3]", [0x3C, 0xC0, 0x7C], [1f, -2f, float.PositiveInfinity]),
            ("e4m3", "F8_E4M3", "[4]", [0x38, 0xB8, 0x7E, 0x01], [1f, -1f, 448f, 1f / 512]),
        };
        var header = new StringBuilder("{");
        var data = new List<byte>();
        foreach (var p in parts)
        {
            if (header.Length > 1) header.Append(',');
            header.Append($"\"{p.Name}\":{{\"dtype\":\"{p.DType}\",\"shape\":{p.Shape},\"data_offsets\":[{data.Count},{data.Count + p.Data.Length}]}}");
            data.AddRange(p.Data);
        }
        header.Append('}');
        using var f = SafeTensorsBytes.Open(SafeTensorsBytes.File(header.ToString(), data.ToArray()));
        foreach (var p in parts) Assert.That(f.ReadF32(p.Name), Is.EqualTo(p.Expected), $"{p.DType} → F32");
        Assert.That(f.ReadInt64("i64"), Is.EqualTo(new[] { -5L, 1L << 53 }), "I64 read exactly");
        Assert.That(f.ReadInt64("bool"), Is.EqualTo(new[] { 0L, 1L, 1L }));
        Assert.That(f.ReadBF16Bits("f32"), Is.EqualTo(new[] { BFloat16.FromFloat(2.5f) }));
        var e = Assert.Throws<ArgumentException>(() => f.ReadInt64("f32"));
        Assert.That(e!.Message, Does.Contain("test.safetensors").And.Contain("'f32'").And.Contain("not an integer"));
        Assert.That(float.IsNaN(SafeTensorsBytes.Open(SafeTensorsBytes.File("""{"n":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]}}""", [0x7F])).ReadF32("n")[0]));
    }

    static byte[] Half16(float v) => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v));

    [Test]
    public void ReadsOneTensorByNameFromDiskAndIntoTensors()
    {
        string folder = Path.Combine(Path.GetTempPath(), "mdm-st-" + Guid.NewGuid().ToString("N"));
        try
        {
            var values = TestSeed.Uniform(rng, 2 * 3 * 5);
            var w = new SafeTensorsWriter().AddF32("first", [2, 3, 5], values).AddBF16("second", [4], [1, 2, 3, 4]);
            string path = Path.Combine(folder, "model.safetensors");
            w.Save(path);
            using var f = SafeTensorsFile.Open(path);
            Assert.That(f.DisplayName, Is.EqualTo(path));
            Assert.That(f.ReadF32("first"), Is.EqualTo(values));
            var backend = TestBackends.Get(BackendKind.Cpu);
            using var dst = backend.Zeros(2, 3, 5);
            f.ReadInto("first", dst);
            Assert.That(dst.ToArray(), Is.EqualTo(values));
            using var dstBf16 = backend.Empty(DType.BF16, 2, 3, 5);
            f.ReadInto("first", dstBf16);
            Assert.That(dstBf16.ToBF16Bits(), Is.EqualTo(values.Select(BFloat16.FromFloat).ToArray()));
            using var wrong = backend.Zeros(30);
            var shapeError = Assert.Throws<ArgumentException>(() => f.ReadInto("first", wrong));
            Assert.That(shapeError!.Message, Does.Contain(path).And.Contain("'first'").And.Contain("[2,3,5]").And.Contain("[30]"));
            var missing = Assert.Throws<KeyNotFoundException>(() => f.ReadF32("secnd"));
            Assert.That(missing!.Message, Does.Contain(path).And.Contain("'secnd'"));
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
    }

    [Test]
    public void WriterRejectsBadInput()
    {
        var w = new SafeTensorsWriter().AddF32("a", [1], [1f]);
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("a", [1], [1f]))!.Message, Does.Contain("'a' added twice"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("__metadata__", [1], [1f]))!.Message, Does.Contain("reserved"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("", [1], [1f]))!.Message, Does.Contain("non-empty"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("neg", [2, -1], []))!.Message, Does.Contain("negative").And.Contain("[2,-1]"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("count", [2, 3], [1f]))!.Message, Does.Contain("6 elements").And.Contain("1 values"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.Add("raw", SafeTensorsDType.F64, [2], new byte[15]))!.Message, Does.Contain("needs 16 bytes"));
        Assert.That(Assert.Throws<ArgumentException>(() => w.AddF32("bad\ud800", [1], [1f]))!.Message, Does.Contain("lone surrogate"));
        w.Metadata["k"] = "v\udc00";
        Assert.That(Assert.Throws<ArgumentException>(() => w.ToArray())!.Message, Does.Contain("metadata value of 'k'"));
        Assert.That(w.Count, Is.EqualTo(1), "failed adds leave nothing behind");
    }
}
