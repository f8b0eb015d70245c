using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mdm.Model.Diffusion;

/// <summary>
/// JSON for <see cref="DiffusionConfig"/> and <see cref="SamplerConfig"/>: camelCase keys, ml-mdm's enum spellings
/// (DEEPFLOYD, V_PREDICTION, DDPM = ε, DYNAMIC_IF, …), ratio lists as "16:4:1" or [16, 4, 1]. Unknown keys are errors,
/// so a misspelt or snake_case key cannot be silently ignored. Every error names the source and the JSON path.
/// </summary>
public static class DiffusionConfigJson
{
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            WriteIndented = true,
        };
        o.Converters.Add(new RatioListConverter());
        o.Converters.Add(new NamedEnumConverter<ScheduleType>(
            [("DEEPFLOYD", ScheduleType.DeepFloyd), ("COSINE", ScheduleType.Cosine), ("DDPM", ScheduleType.Ddpm)],
            new Dictionary<string, string> { ["SIGMOID"] = "the SIGMOID schedule is declared in ml-mdm but was never wired in; use DEEPFLOYD, COSINE or DDPM" }));
        o.Converters.Add(new NamedEnumConverter<PredictionType>(
            [("V_PREDICTION", PredictionType.V), ("DDPM", PredictionType.Epsilon), ("X0", PredictionType.X0), ("EPSILON", PredictionType.Epsilon), ("V", PredictionType.V)]));
        o.Converters.Add(new NamedEnumConverter<ThresholdType>(
            [("NONE", ThresholdType.None), ("CLIP", ThresholdType.Clip), ("DYNAMIC", ThresholdType.Dynamic), ("DYNAMIC_IF", ThresholdType.DynamicDeepFloyd)]));
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    /// <summary>Parses and validates a diffusion config object; throws InvalidDataException (bad JSON) or ArgumentException (bad values).</summary>
    public static DiffusionConfig ParseDiffusion(string json, string source = "diffusion config") =>
        Deserialize<DiffusionConfig>(json, source).Validate();

    /// <summary>
    /// The diffusion section of a run config, accepting <c>mixedRatio</c> and <c>multiResWeights</c> also at the top
    /// level of the document (where ml-mdm's 256/1024 YAMLs put them): a top-level value is used when the section lacks
    /// the key; giving a key in both places is an error.
    /// </summary>
    public static DiffusionConfig ParseDiffusion(JsonElement section, JsonElement topLevel, string source = "run config")
    {
        if (section.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: the diffusion section must be a JSON object, got {section.ValueKind}");
        var config = Deserialize<DiffusionConfig>(section.GetRawText(), source);
        if (topLevel.ValueKind == JsonValueKind.Object)
        {
            foreach (var key in new[] { "mixedRatio", "multiResWeights" })
            {
                if (!topLevel.TryGetProperty(key, out var value)) continue;
                if (section.TryGetProperty(key, out _))
                    throw new InvalidDataException($"{source}: '{key}' is given both at the top level and in the diffusion section; keep one");
                var list = Deserialize<IReadOnlyList<double>?>(value.GetRawText(), $"{source} (top-level '{key}')");
                config = key == "mixedRatio" ? config with { MixedRatio = list } : config with { MultiResWeights = list };
            }
        }
        return config.Validate();
    }

    public static SamplerConfig ParseSampler(string json, string source = "sampler config") =>
        Deserialize<SamplerConfig>(json, source).Validate();

    public static string ToJson(DiffusionConfig config) => JsonSerializer.Serialize(config, Options);
    public static string ToJson(SamplerConfig config) => JsonSerializer.Serialize(config, Options);

    static T Deserialize<T>(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                ?? throw new InvalidDataException($"{source}: the JSON is null, expected an object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>ml-mdm writes ratios as colon-separated strings; a JSON array of numbers is accepted too.</summary>
    sealed class RatioListConverter : JsonConverter<IReadOnlyList<double>>
    {
        public override IReadOnlyList<double> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                var text = reader.GetString()!;
                var parts = text.Split(':');
                var values = new double[parts.Length];
                for (int i = 0; i < parts.Length; i++)
                    if (!double.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                        throw new JsonException($"ratio '{text}': '{parts[i]}' is not a number (expected e.g. \"16:4:1\")");
                return values;
            }
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                var list = new List<double>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.Number) throw new JsonException($"ratio array: expected numbers, got {reader.TokenType}");
                    list.Add(reader.GetDouble());
                }
                return list.ToArray();
            }
            throw new JsonException($"ratio: expected a string like \"2:1\" or an array of numbers, got {reader.TokenType}");
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<double> value, JsonSerializerOptions options) =>
            writer.WriteStringValue(DiffusionConfig.Format(value));
    }

    /// <summary>Enums by explicit names (case-insensitive); the first name of a value is the one written.</summary>
    sealed class NamedEnumConverter<T>((string Name, T Value)[] names, Dictionary<string, string>? rejected = null)
        : JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String)
                throw new JsonException($"{typeof(T).Name}: expected a string, got {reader.TokenType}");
            var text = reader.GetString()!;
            foreach (var (name, value) in names)
                if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase)) return value;
            if (rejected is not null && rejected.TryGetValue(text.ToUpperInvariant(), out var why)) throw new JsonException(why);
            throw new JsonException($"{typeof(T).Name}: unknown value '{text}'; expected one of {string.Join(", ", names.Select(n => n.Name))}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
        {
            foreach (var (name, v) in names)
                if (EqualityComparer<T>.Default.Equals(v, value)) { writer.WriteStringValue(name); return; }
            throw new JsonException($"{typeof(T).Name}: value {value} has no name");
        }
    }
}
