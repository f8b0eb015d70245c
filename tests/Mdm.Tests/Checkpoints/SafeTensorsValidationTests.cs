using System.Buffers.Binary;
using System.Text;
using Mdm.Model.Checkpoints;

namespace Mdm.Tests.Checkpoints;

/// <summary>Every malformed input the reader must refuse, each with a message naming the file and the problem.</summary>
public class SafeTensorsValidationTests
{
    const string W4 = """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";

    static CheckpointFormatException Rejects(byte[] bytes, string file = "test.safetensors")
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsBytes.LoadEverything(bytes, file))!;
        Assert.That(e.Message, Does.StartWith(file + ": "), "the message names the file");
        Assert.That(e.File, Is.EqualTo(file));
        TestContext.Out.WriteLine(e.Message);
        return e;
    }

    static IEnumerable<TestCaseData> HeaderCases()
    {
        TestCaseData Case(string name, string header, int dataBytes, params string[] fragments) =>
            new TestCaseData(header, dataBytes, fragments).SetName("Rejects_" + name);
        yield return Case("NotAnObject", "[1,2]", 0, "does not start with '{'");
        yield return Case("LeadingSpace", " {}", 0, "does not start with '{'");
        yield return Case("InvalidJson", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}""", 4, "not valid JSON");
        yield return Case("TrailingContent", "{} {}", 0, "not valid JSON", "after a single JSON value");
        yield return Case("TrailingComma", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}""", 4, "not valid JSON");
        yield return Case("DuplicateTensor", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "duplicate key 'w'");
        yield return Case("DuplicateMetadataMap", """{"__metadata__":{},"__metadata__":{}}""", 0, "duplicate key '__metadata__'");
        yield return Case("DuplicateMetadataKey", """{"__metadata__":{"k":"1","k":"2"}}""", 0, "duplicate key 'k' in '__metadata__'");
        yield return Case("MetadataNotObject", """{"__metadata__":[1]}""", 0, "'__metadata__' must be an object of strings");
        yield return Case("MetadataValueNotString", """{"__metadata__":{"step":12}}""", 0, "value of 'step' must be a string");
        yield return Case("UnknownDType", """{"w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}""", 4, "tensor 'w': unknown dtype 'F31'");
        yield return Case("DTypeNotString", """{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}""", 4, "tensor 'w': dtype must be a string");
        yield return Case("EntryNotObject", """{"w":5}""", 0, "tensor 'w': expected an object");
        yield return Case("MissingField", """{"w":{"dtype":"F32","shape":[1]}}""", 4, "tensor 'w': missing field 'data_offsets'");
        yield return Case("UnknownField", """{"w":{"dtype":"F32","shape":[1],"offsets":[0,4]}}""", 4, "tensor 'w': unknown field 'offsets'");
        yield return Case("DuplicateField", """{"w":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}}""", 4, "tensor 'w': duplicate field 'shape'");
        yield return Case("NegativeDim", """{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "tensor 'w': shape must hold non-negative integers", "'-1'");
        yield return Case("FractionalDim", """{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", 4, "shape must hold non-negative integers", "'1.5'");
        yield return Case("HugeOffset", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}""", 4, "data_offsets must hold non-negative integers");
        yield return Case("ShapeNotArray", """{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}""", 4, "shape must be an array");
        yield return Case("ThreeOffsets", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", 4, "data_offsets must be [begin, end], found 3");
        yield return Case("EndBeforeBegin", """{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}""", 0, "tensor 'w' data_offsets [4, 0] end before they begin");
        yield return Case("WrongByteCount", """{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}}""", 24, "tensor 'w' data_offsets [0, 24] hold 24 bytes but BF16 [2,3] needs 12");
        yield return Case("Hole", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "data bytes [4, 8) belong to no tensor", "'b'");
        yield return Case("NotFromZero", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "data bytes [0, 4) belong to no tensor");
        yield return Case("Overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "tensor 'b' data_offsets [4, 8] overlap 'a' [0, 8]");
        yield return Case("SameRangeTwice", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "overlap");
        yield return Case("TrailingData", W4, 7, "data section holds 7 bytes but the tensors cover only 4");
        yield return Case("DataTruncated", W4, 3, "file truncated: the tensors need 4 data bytes but only 3 are present");
        yield return Case("ElementCountOverflow", """{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8, "tensor 'w': F64 [4294967296,4294967296] has more bytes than a file can hold");
        yield return Case("ByteCountOverflow", """{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}""", 8, "more bytes than a file can hold");
        yield return Case("LoneSurrogateEscape", """{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "invalid string");
        yield return Case("UnterminatedString", """{"w":{"dtype":"F32""", 0, "not valid JSON");
        yield return Case("Comment", """{/* c */}""", 0, "not valid JSON");
    }

    [TestCaseSource(nameof(HeaderCases))]
    public void HeaderErrorIsNamed(string header, int dataBytes, string[] fragments)
    {
        var e = Rejects(SafeTensorsBytes.File(header, new byte[dataBytes]));
        foreach (var f in fragments) Assert.That(e.Message, Does.Contain(f));
    }

    [Test]
    public void ByteCountMessageMatchesTheDocumentedExample()
    {
        const string header = """{"conv_in.weight":{"dtype":"F32","shape":[3,3,3,3],"data_offsets":[0,100]}}""";
        var e = Rejects(SafeTensorsBytes.File(header, new byte[100]), "model.safetensors");
        Assert.That(e.Message, Is.EqualTo("model.safetensors: tensor 'conv_in.weight' data_offsets [0, 100] hold 100 bytes but F32 [3,3,3,3] needs 324"));
    }

    [Test]
    public void InvalidUtf8HeaderIsRejected()
    {
        var header = Encoding.UTF8.GetBytes("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""");
        header[2] = 0xFF;
        Assert.That(Rejects(SafeTensorsBytes.File(header, new byte[4])).Message, Does.Contain("header is not valid UTF-8"));
    }

    [TestCase(100_000_001UL)]
    [TestCase(1UL << 40)]
    [TestCase(ulong.MaxValue)]
    public void HugeHeaderLengthIsRejectedWithoutAllocating(ulong length)
    {
        var bytes = SafeTensorsBytes.File("{}      ", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        Assert.That(Rejects(bytes).Message, Does.Contain($"header length {length} exceeds the 100000000-byte limit"));
    }

    [Test]
    public void HeaderLongerThanTheFileIsTruncation()
    {
        var e = Rejects(SafeTensorsBytes.File(W4, new byte[4], declaredHeaderLength: 1000));
        Assert.That(e.Message, Does.Contain("file truncated: header length is 1000 bytes but only").And.Contain("follow the length field"));
    }

    [Test]
    public void EmptyHeaderIsRejected() =>
        Assert.That(Rejects(SafeTensorsBytes.File("", [])).Message, Does.Contain("does not start with '{'"));

    [Test]
    public void TruncationAtEveryByteIsRejected()
    {
        var w = new SafeTensorsWriter().AddF32("a.weight", [2, 3], [1, 2, 3, 4, 5, 6]).AddBF16("b", [3], [1, 2, 3]).AddI64("step", [], [42]);
        w.Metadata["note"] = "truncate me";
        var full = w.ToArray();
        Assert.That(SafeTensorsBytes.LoadEverything(full), Is.EqualTo(3), "the untruncated file loads");
        for (int length = 0; length < full.Length; length++)
        {
            var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsBytes.LoadEverything(full[..length]),
                $"a file cut to {length} of {full.Length} bytes was accepted");
            Assert.That(e!.Message, Does.Contain("truncated"), $"cut to {length} bytes: {e.Message}");
        }
    }

    [Test]
    public void FileChangedAfterOpeningIsReportedAsTruncated()
    {
        var full = new SafeTensorsWriter().AddF32("w", [4], [1, 2, 3, 4]).ToArray();
        var stream = new MemoryStream();
        stream.Write(full);
        using var f = SafeTensorsFile.Read(stream, "shrinking.safetensors");
        stream.SetLength(full.Length - 2);
        var e = Assert.Throws<CheckpointFormatException>(() => f.ReadF32("w"));
        Assert.That(e!.Message, Does.Contain("shrinking.safetensors").And.Contain("truncated while reading tensor 'w'"));
    }
}
