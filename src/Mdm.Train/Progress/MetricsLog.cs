using System.Globalization;
using System.Text.Json;

namespace Mdm.Train.Progress;

/// <summary>Appends one JSON object per step to metrics.jsonl (flushed each line, so a killed run keeps its history).</summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter writer;

    public MetricsLog(string path, bool append)
    {
        Path = path;
        writer = new StreamWriter(new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read));
    }

    public string Path { get; }

    /// <summary>Non-finite numbers are written as the strings "nan", "inf", "-inf" (JSON has no NaN).</summary>
    public void Write(IReadOnlyDictionary<string, object> values)
    {
        var clean = values.ToDictionary(kv => kv.Key, kv => kv.Value switch
        {
            double d when double.IsNaN(d) => "nan",
            double d when double.IsInfinity(d) => d > 0 ? "inf" : "-inf",
            float f when !float.IsFinite(f) => float.IsNaN(f) ? "nan" : f > 0 ? "inf" : "-inf",
            var v => v,
        });
        writer.WriteLine(JsonSerializer.Serialize(clean));
        writer.Flush();
    }

    /// <summary>Reads (step, loss) pairs back, e.g. for the loss plot; lines that do not parse are skipped.</summary>
    public static List<(long Step, double Loss)> ReadLoss(string path)
    {
        var r = new List<(long, double)>();
        if (!File.Exists(path)) return r;
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.TryGetProperty("step", out var s) && root.TryGetProperty("loss", out var l) && l.ValueKind == JsonValueKind.Number)
                    r.Add((s.GetInt64(), l.GetDouble()));
            }
            catch (JsonException) { }
        }
        return r;
    }

    public void Dispose() => writer.Dispose();

    public static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
