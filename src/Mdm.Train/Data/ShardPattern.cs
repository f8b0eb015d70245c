using System.Text.RegularExpressions;

namespace Mdm.Train.Data;

/// <summary>Turns a shard pattern into the shard files, in order: a tar file, a folder (its *.tar), a glob in the file
/// name (<c>*</c>, <c>?</c>) or webdataset's brace range <c>{000..099}</c> (zero padding kept).</summary>
public static partial class ShardPattern
{
    [GeneratedRegex(@"\{(\d+)\.\.(\d+)\}")]
    private static partial Regex BraceRange();

    public static string[] Expand(string pattern)
    {
        if (BraceRange().Match(pattern) is { Success: true } m)
        {
            long from = long.Parse(m.Groups[1].Value), to = long.Parse(m.Groups[2].Value);
            if (to < from || to - from > 1_000_000) throw new DataFormatException(pattern, $"brace range {m.Value} must count up, by at most a million shards");
            int width = m.Groups[1].Value.Length;
            var files = new List<string>();
            for (long i = from; i <= to; i++)
                files.AddRange(Expand(string.Concat(pattern.AsSpan(0, m.Index), i.ToString().PadLeft(width, '0'), pattern.AsSpan(m.Index + m.Length))));
            return [.. files];
        }
        if (Directory.Exists(pattern)) return Existing(pattern, "*.tar", pattern);
        string dir = Path.GetDirectoryName(pattern) is { Length: > 0 } d ? d : ".", name = Path.GetFileName(pattern);
        if (name.IndexOfAny(['*', '?']) >= 0)
        {
            if (!Directory.Exists(dir)) throw new DataFormatException(pattern, $"folder '{dir}' does not exist");
            return Existing(dir, name, pattern);
        }
        if (!File.Exists(pattern)) throw new DataFormatException(pattern, "no such shard file");
        return [pattern];
    }

    static string[] Existing(string dir, string glob, string pattern)
    {
        var files = Directory.GetFiles(dir, glob).Order(StringComparer.Ordinal).ToArray();
        return files.Length > 0 ? files : throw new DataFormatException(pattern, $"no shard files match '{glob}' in '{dir}'");
    }
}
