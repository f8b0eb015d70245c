using System.Globalization;
using System.Text.Json.Nodes;
using Mdm.Train.Cli;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Mdm.Train.Training;

/// <summary>
/// One YAML mapping of an ml-mdm config with its path ("unet_config.inner_config"), read field by field. Every key
/// read is marked; <see cref="RefuseUnread"/> then names any key the converter does not know, so nothing is dropped
/// silently. Values are ml-mdm's: scalars, flow lists, or comma strings ("2,3") for list fields.
/// </summary>
sealed class MlMdmYamlNode(Dictionary<string, object?> map, string path, string source)
{
    readonly HashSet<string> read = new(StringComparer.Ordinal);

    public string Path => path;

    public static MlMdmYamlNode Load(string yaml, string source)
    {
        object? tree;
        try { tree = LoadLastKeyWins(yaml); }
        catch (YamlException e) { throw new UsageException($"{source}: not valid YAML: {e.Message}"); }
        if (tree is not Dictionary<string, object?> root) throw new UsageException($"{source}: expected a YAML mapping at the top level");
        return new MlMdmYamlNode(root, "", source);
    }

    public UsageException Refuse(string key, string value, string why) =>
        new($"{source}: {Name(key)}: {value} — {why}");

    public string Name(string key) => path.Length == 0 ? key : $"{path}.{key}";

    object? Get(string key)
    {
        read.Add(key);
        return map.TryGetValue(key, out var v) ? v : null;
    }

    /// <summary>The scalar text (null for absent, empty, null or None).</summary>
    public string? Text(string key) => Get(key) switch
    {
        string s when s is not ("" or "null" or "None" or "~") => s,
        string => null,
        null => null,
        var other => throw new UsageException($"{source}: {Name(key)}: expected a single value, found a {(other is List<object?> ? "list" : "mapping")}"),
    };

    public MlMdmYamlNode? Child(string key) => Get(key) switch
    {
        Dictionary<string, object?> m => new MlMdmYamlNode(m, Name(key), source),
        null => null,
        string s when s is "" or "null" or "None" => null,
        var other => throw new UsageException($"{source}: {Name(key)}: should be a mapping, found {other.GetType().Name}"),
    };

    public int? Int(string key) => Text(key) is { } s ? ParseInt(s, key) : null;
    public double? Double(string key) => Text(key) is { } s
        ? double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Refuse(key, s, "not a number")
        : null;
    public bool? Bool(string key) => Text(key)?.ToLowerInvariant() switch
    {
        null => null,
        "true" or "1" => true,
        "false" or "0" => false,
        var s => throw Refuse(key, s, "expected true/false (or 1/0)"),
    };

    /// <summary>A list of ints: a YAML list, a comma string "2,3" or one number; an empty string or [] is empty.</summary>
    public int[]? Ints(string key)
    {
        var v = Get(key);
        if (v is List<object?> list) return list.Select(x => ParseInt(x as string ?? "", key)).ToArray();
        if (v is not string s || s is "null" or "None") return null;
        return s.Trim().Length == 0 ? [] : s.Split(',').Select(x => ParseInt(x.Trim(), key)).ToArray();
    }

    int ParseInt(string s, string key) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw Refuse(key, s, "not an integer");

    /// <summary>A YAML list or scalar as JSON (numbers stay numbers); null when absent.</summary>
    public JsonNode? Json(string key)
    {
        switch (Get(key))
        {
            case List<object?> seq:
                var arr = new JsonArray();
                foreach (var item in seq.OfType<string>())
                    arr.Add(int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? JsonValue.Create(i)
                        : double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? JsonValue.Create(d) : JsonValue.Create(item));
                return arr;
            case string s when s is not ("null" or "None" or ""):
                return JsonValue.Create(s);
            default:
                return null;
        }
    }

    /// <summary>Throws for the first key of this mapping that was never read.</summary>
    public void RefuseUnread()
    {
        foreach (var key in map.Keys)
            if (!read.Contains(key))
                throw new UsageException($"{source}: {Name(key)}: not a field of ml-mdm's config here; nothing was converted");
    }

    /// <summary>Duplicate keys keep the last value, as PyYAML does (the ml-mdm files repeat keys and rely on it).</summary>
    static object? LoadLastKeyWins(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<StreamStart>();
        if (parser.Accept<StreamEnd>(out _)) return null;
        parser.Consume<DocumentStart>();
        return ReadNode(parser);
    }

    static object? ReadNode(IParser parser)
    {
        if (parser.TryConsume<Scalar>(out var scalar)) return scalar.Value;
        if (parser.TryConsume<SequenceStart>(out _))
        {
            var list = new List<object?>();
            while (!parser.TryConsume<SequenceEnd>(out _)) list.Add(ReadNode(parser));
            return list;
        }
        if (parser.TryConsume<MappingStart>(out _))
        {
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var key = ReadNode(parser) as string ?? throw new YamlException("only scalar mapping keys are supported");
                map[key] = ReadNode(parser);
            }
            return map;
        }
        if (parser.TryConsume<AnchorAlias>(out _)) throw new YamlException("YAML aliases are not supported");
        throw new YamlException($"unexpected YAML event {parser.Current}");
    }
}
