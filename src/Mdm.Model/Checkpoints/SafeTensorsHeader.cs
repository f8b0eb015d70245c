using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// Parses and validates a safetensors JSON header as the reference reader does, plus what it leaves to chance:
/// duplicate keys (anywhere), unknown or repeated fields, a first byte other than '{', and content after the object.
/// Every problem becomes a <see cref="CheckpointFormatException"/> naming the file and the offending key.
/// </summary>
internal static class SafeTensorsHeader
{
    public const string MetadataKey = "__metadata__";

    public static (List<SafeTensorsEntry> Entries, Dictionary<string, string> Metadata) Parse(string file, ReadOnlySpan<byte> json)
    {
        if (!Utf8.IsValid(json)) throw new CheckpointFormatException(file, "header is not valid UTF-8");
        if (json.Length == 0 || json[0] != (byte)'{')
            throw new CheckpointFormatException(file, $"header does not start with '{{' (first byte 0x{(json.Length == 0 ? 0 : json[0]):X2}); not a safetensors file");
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            Next(ref reader, file);   // StartObject, guaranteed by the '{' check
            while (true)
            {
                Next(ref reader, file);
                if (reader.TokenType == JsonTokenType.EndObject) break;
                string key = reader.GetString()!;
                if (!seen.Add(key)) throw new CheckpointFormatException(file, $"duplicate key '{key}' in the header");
                Next(ref reader, file);
                if (key == MetadataKey) ReadMetadata(ref reader, file, metadata);
                else entries.Add(ReadEntry(ref reader, file, key));
            }
            reader.Read();   // only whitespace (the padding) may follow the object; anything else throws JsonException
            return (entries, metadata);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(file, $"header is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)   // a string escape that is not valid UTF-16 (a lone surrogate)
        {
            throw new CheckpointFormatException(file, $"header holds an invalid string: {e.Message}", e);
        }
    }

    static void Next(ref Utf8JsonReader reader, string file)
    {
        if (!reader.Read()) throw new CheckpointFormatException(file, "header JSON ends early");
    }

    static void ReadMetadata(ref Utf8JsonReader reader, string file, Dictionary<string, string> metadata)
    {
        if (reader.TokenType == JsonTokenType.Null) return;
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new CheckpointFormatException(file, $"'{MetadataKey}' must be an object of strings, found {reader.TokenType}");
        while (true)
        {
            Next(ref reader, file);
            if (reader.TokenType == JsonTokenType.EndObject) return;
            string key = reader.GetString()!;
            Next(ref reader, file);
            if (reader.TokenType != JsonTokenType.String)
                throw new CheckpointFormatException(file, $"'{MetadataKey}' value of '{key}' must be a string, found {reader.TokenType}");
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw new CheckpointFormatException(file, $"duplicate key '{key}' in '{MetadataKey}'");
        }
    }

    static SafeTensorsEntry ReadEntry(ref Utf8JsonReader reader, string file, string name)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new CheckpointFormatException(file, $"tensor '{name}': expected an object with dtype, shape and data_offsets, found {reader.TokenType}");
        string? dtypeName = null;
        long[]? shape = null, offsets = null;
        while (true)
        {
            Next(ref reader, file);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string field = reader.GetString()!;
            Next(ref reader, file);
            switch (field)
            {
                case "dtype" when dtypeName is null:
                    if (reader.TokenType != JsonTokenType.String)
                        throw new CheckpointFormatException(file, $"tensor '{name}': dtype must be a string, found {reader.TokenType}");
                    dtypeName = reader.GetString()!;
                    break;
                case "shape" when shape is null:
                    shape = ReadIntegers(ref reader, file, name, "shape");
                    break;
                case "data_offsets" when offsets is null:
                    offsets = ReadIntegers(ref reader, file, name, "data_offsets");
                    if (offsets.Length != 2)
                        throw new CheckpointFormatException(file, $"tensor '{name}': data_offsets must be [begin, end], found {offsets.Length} numbers");
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw new CheckpointFormatException(file, $"tensor '{name}': duplicate field '{field}'");
                default:
                    throw new CheckpointFormatException(file, $"tensor '{name}': unknown field '{field}' (expected dtype, shape, data_offsets)");
            }
        }
        if (dtypeName is null || shape is null || offsets is null)
            throw new CheckpointFormatException(file, $"tensor '{name}': missing field '{(dtypeName is null ? "dtype" : shape is null ? "shape" : "data_offsets")}'");
        if (!SafeTensorsDTypeExtensions.TryParse(dtypeName, out var dtype))
            throw new CheckpointFormatException(file, $"tensor '{name}': unknown dtype '{dtypeName}' (known: {string.Join(", ", Enum.GetNames<SafeTensorsDType>())})");
        long numel;
        try
        {
            numel = 1;
            foreach (long d in shape) numel = checked(numel * d);
            _ = checked(numel * dtype.Size());
        }
        catch (OverflowException)
        {
            throw new CheckpointFormatException(file, $"tensor '{name}': {dtype.Name()} {SafeTensorsEntry.FormatShape(shape)} has more bytes than a file can hold");
        }
        return new SafeTensorsEntry(name, dtype, shape, offsets[0], offsets[1], numel);
    }

    static long[] ReadIntegers(ref Utf8JsonReader reader, string file, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new CheckpointFormatException(file, $"tensor '{name}': {field} must be an array of integers, found {reader.TokenType}");
        var values = new List<long>();
        while (true)
        {
            Next(ref reader, file);
            if (reader.TokenType == JsonTokenType.EndArray) return values.ToArray();
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v) || v < 0)
                throw new CheckpointFormatException(file, $"tensor '{name}': {field} must hold non-negative integers below 2^63, found '{Token(ref reader)}'");
            values.Add(v);
            if (values.Count > 64) throw new CheckpointFormatException(file, $"tensor '{name}': {field} has more than 64 entries");
        }
    }

    static string Token(ref Utf8JsonReader reader)
    {
        string s = reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject ? reader.TokenType.ToString()
            : Encoding.UTF8.GetString(reader.ValueSpan);
        return s.Length > 40 ? s[..40] + "…" : s;
    }
}
