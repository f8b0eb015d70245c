using System.Globalization;

namespace Mdm.Bench;

/// <summary>The command-line flags of a bench: "--name value" pairs and bare switches, each from a known list.</summary>
sealed class BenchArgs
{
    readonly Dictionary<string, string> values = new();
    readonly HashSet<string> switches = new();

    /// <summary>The parsed flags, or null (after one line on stderr naming the bench and the flag) for an unknown flag
    /// or a value flag without its value.</summary>
    public static BenchArgs? Parse(string[] args, string bench, string[] switchNames, string[] valueNames)
    {
        var parsed = new BenchArgs();
        for (int i = 0; i < args.Length; i++)
        {
            if (switchNames.Contains(args[i])) parsed.switches.Add(args[i]);
            else if (valueNames.Contains(args[i]) && i + 1 < args.Length) parsed.values[args[i]] = args[++i];
            else
            {
                Console.Error.WriteLine($"{bench}: unknown argument '{args[i]}' (flags: {string.Join(", ", switchNames.Concat(valueNames))})");
                return null;
            }
        }
        return parsed;
    }

    public bool Has(string name) => switches.Contains(name);
    public string Text(string name, string fallback) => values.GetValueOrDefault(name, fallback);
    public int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public double Double(string name, double fallback) => values.TryGetValue(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
