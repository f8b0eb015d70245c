using System.Globalization;
using System.Text;

namespace Mdm.Model.Checkpoints;

/// <summary>Compact JSON exactly as serde_json writes it (the reference writer), so our headers match byte for byte.</summary>
internal static class SafeTensorsJson
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A JSON string literal: only '"', '\\' and control characters are escaped; everything else stays raw UTF-8.</summary>
    public static void AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    public static void AppendIntegers(StringBuilder sb, ReadOnlySpan<long> values)
    {
        sb.Append('[');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(values[i].ToString(CultureInfo.InvariantCulture));
        }
        sb.Append(']');
    }

    /// <summary>UTF-8 bytes of a name or metadata string; a lone surrogate (not encodable) is an error naming it.</summary>
    public static byte[] Utf8(string s, string what)
    {
        try { return StrictUtf8.GetBytes(s); }
        catch (EncoderFallbackException e) { throw new ArgumentException($"{what} '{s}' is not valid Unicode (lone surrogate)", e); }
    }
}
