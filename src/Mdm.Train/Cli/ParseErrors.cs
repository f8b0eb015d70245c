using System.Text.RegularExpressions;

namespace Mdm.Train.Cli;

/// <summary>Parse errors in words: "expected a whole number" instead of a .NET type name.</summary>
public static partial class ParseErrors
{
    public static string Plain(string message) => ExpectedType().Replace(message, m => $"(expected {Friendly(m.Groups[1].Value)})");

    static string Friendly(string type)
    {
        var inner = NullableOf().Match(type) is { Success: true } n ? n.Groups[1].Value : type;
        return inner switch
        {
            "System.Int32" or "System.Int64" => "a whole number",
            "System.UInt32" or "System.UInt64" => "a whole number >= 0",
            "System.Double" or "System.Single" => "a number",
            "System.Boolean" => "true or false",
            "System.String" => "text",
            _ => inner[(inner.LastIndexOf('.') + 1)..],
        };
    }

    [GeneratedRegex(@"as expected type '([^']+)'\.?")]
    private static partial Regex ExpectedType();

    [GeneratedRegex(@"^System\.Nullable`1\[(.+)\]$")]
    private static partial Regex NullableOf();
}
