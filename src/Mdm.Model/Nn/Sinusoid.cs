namespace Mdm.Model.Nn;

/// <summary>
/// The sinusoid of ml-mdm's time (and micro-conditioning) embedding, computed on the host from the values: T/8
/// frequencies f_k = exp(−k·ln(10000)/(T/8)); the row is [sin(v·f), cos(v·f)] (width T/4). Computed in float64 and
/// rounded once (torch rounds v·f to float32 first, a difference below 1e-4 at v = 999).
/// </summary>
public static class Sinusoid
{
    public static float[] Embed(IReadOnlyList<double> values, int temporalDim)
    {
        int half = temporalDim / 8, width = temporalDim / 4;
        var r = new float[values.Count * width];
        double c = Math.Log(10000) / half;
        for (int b = 0; b < values.Count; b++)
            for (int k = 0; k < half; k++)
            {
                double a = values[b] * Math.Exp(-k * c);
                r[b * width + k] = (float)Math.Sin(a);
                r[b * width + half + k] = (float)Math.Cos(a);
            }
        return r;
    }
}
