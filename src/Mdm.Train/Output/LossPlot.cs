using System.Globalization;
using System.Text;

namespace Mdm.Train.Output;

public sealed record LossPlotOptions
{
    public string Title { get; init; } = "training loss";
    public string XLabel { get; init; } = "step";
    public string YLabel { get; init; } = "loss";
    public int Width { get; init; } = 800;
    public int Height { get; init; } = 480;

    /// <summary>Exponential-moving-average weight of the smoothed curve (0 = no smoothed curve), bias-corrected like TensorBoard's.</summary>
    public double Smoothing { get; init; } = 0.9;

    /// <summary>Logarithmic loss axis (non-positive values are left out).</summary>
    public bool LogY { get; init; }
}

/// <summary>
/// A loss curve as a self-contained SVG drawn by hand (no native code, no fonts needed to write it): axes with
/// 1-2-5 ticks and grid lines, axis labels, the raw series thin and light, the smoothed series bold. Non-finite
/// values break the line instead of wrecking the scale. Long series are reduced to the min and max of each pixel
/// column, which keeps spikes while bounding the file size.
/// </summary>
public static class LossPlot
{
    const int MarginLeft = 72, MarginRight = 24, MarginTop = 40, MarginBottom = 52;
    const string RawColour = "#9ecae1", SmoothColour = "#08519c", GridColour = "#e5e5e5", AxisColour = "#333333";

    public static void Save(string path, IReadOnlyList<double> steps, IReadOnlyList<double> losses, LossPlotOptions? options = null)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, ToSvg(steps, losses, options));
    }

    public static string ToSvg(IReadOnlyList<double> steps, IReadOnlyList<double> losses, LossPlotOptions? options = null)
    {
        var o = options ?? new LossPlotOptions();
        if (steps.Count != losses.Count) throw new ArgumentException($"{steps.Count} steps but {losses.Count} losses");
        if (o.Width < 200 || o.Height < 150) throw new ArgumentException($"plot size {o.Width}x{o.Height} is too small (at least 200x150)");
        if (o.Smoothing is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(options), o.Smoothing, "smoothing must lie in [0, 1)");

        bool Usable(int i) => double.IsFinite(steps[i]) && double.IsFinite(losses[i]) && (!o.LogY || losses[i] > 0);
        var keep = Enumerable.Range(0, steps.Count).Where(Usable).ToArray();
        double[] xs = [.. keep.Select(i => steps[i])], ys = [.. keep.Select(i => losses[i])];
        double[] smooth = o.Smoothing > 0 ? Smooth(ys, o.Smoothing) : [];

        int plotW = o.Width - MarginLeft - MarginRight, plotH = o.Height - MarginTop - MarginBottom;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{o.Width}" height="{o.Height}" viewBox="0 0 {o.Width} {o.Height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<rect width="{o.Width}" height="{o.Height}" fill="white"/>""").Append('\n');
        Text(svg, o.Width / 2.0, 24, o.Title, "middle", 15, bold: true);
        Text(svg, MarginLeft + plotW / 2.0, o.Height - 12, o.XLabel, "middle", 13);
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="18" y="{F(MarginTop + plotH / 2.0)}" text-anchor="middle" font-size="13" transform="rotate(-90 18 {F(MarginTop + plotH / 2.0)})">{Escape(o.YLabel)}</text>""").Append('\n');

        if (xs.Length == 0)
        {
            Text(svg, MarginLeft + plotW / 2.0, MarginTop + plotH / 2.0, "no finite data", "middle", 14);
            Frame(svg, plotW, plotH);
            return svg.Append("</svg>\n").ToString();
        }

        var (xLo, xHi) = Range(xs);
        double[] xTicks = NiceTicks(xLo, xHi, 6);
        Func<double, double> yMap = o.LogY ? Math.Log10 : v => v;
        var (yLoData, yHiData) = Range([.. ys.Select(yMap)]);
        double[] yTicks = o.LogY ? LogTicks(yLoData, yHiData) : NiceTicks(yLoData, yHiData, 6);
        double yLo = yTicks[0], yHi = yTicks[^1];   // ticks (in log10 units on a log axis) enclose the data
        if (yHi - yLo < 1e-300) (yLo, yHi) = (yLo - 1, yHi + 1);
        if (xHi - xLo < 1e-300) (xLo, xHi) = (xLo - 1, xHi + 1);
        double Px(double x) => MarginLeft + (x - xLo) / (xHi - xLo) * plotW;
        double Py(double y) => MarginTop + plotH - (yMap(y) - yLo) / (yHi - yLo) * plotH;

        foreach (double t in xTicks.Where(t => t >= xLo && t <= xHi))
        {
            Line(svg, Px(t), MarginTop, Px(t), MarginTop + plotH, GridColour);
            Line(svg, Px(t), MarginTop + plotH, Px(t), MarginTop + plotH + 5, AxisColour);
            Text(svg, Px(t), MarginTop + plotH + 19, Label(t, xTicks), "middle", 12);
        }
        foreach (double t in yTicks)
        {
            double y = o.LogY ? Math.Pow(10, t) : t;
            if (yMap(y) < yLo - 1e-12 || yMap(y) > yHi + 1e-12) continue;
            Line(svg, MarginLeft, Py(y), MarginLeft + plotW, Py(y), GridColour);
            Line(svg, MarginLeft - 5, Py(y), MarginLeft, Py(y), AxisColour);
            Text(svg, MarginLeft - 8, Py(y) + 4, o.LogY ? Label(y, [y]) : Label(t, yTicks), "end", 12);
        }
        Frame(svg, plotW, plotH);

        svg.Append(CultureInfo.InvariantCulture, $"""<clipPath id="plot-area"><rect x="{MarginLeft}" y="{MarginTop}" width="{plotW}" height="{plotH}"/></clipPath>""").Append('\n');
        Polyline(svg, Reduce(xs, ys, Px, Py, plotW), RawColour, 1);
        if (smooth.Length > 0) Polyline(svg, Reduce(xs, smooth, Px, Py, plotW), SmoothColour, 2);

        // Legend, top right inside the plot.
        double lx = MarginLeft + plotW - 170, ly = MarginTop + 16;
        svg.Append(CultureInfo.InvariantCulture, $"""<rect x="{F(lx - 8)}" y="{F(ly - 12)}" width="176" height="{(smooth.Length > 0 ? 42 : 24)}" fill="white" fill-opacity="0.8"/>""").Append('\n');
        Line(svg, lx, ly, lx + 24, ly, RawColour, 2);
        Text(svg, lx + 30, ly + 4, "raw", "start", 12);
        if (smooth.Length > 0)
        {
            Line(svg, lx, ly + 18, lx + 24, ly + 18, SmoothColour, 2);
            Text(svg, lx + 30, ly + 22, $"smoothed (EMA {o.Smoothing.ToString("0.###", CultureInfo.InvariantCulture)})", "start", 12);
        }
        return svg.Append("</svg>\n").ToString();
    }

    /// <summary>Exponential moving average with TensorBoard's bias correction (the first value is not dragged toward 0).</summary>
    public static double[] Smooth(IReadOnlyList<double> values, double weight)
    {
        var result = new double[values.Count];
        double ema = 0, norm = 0;
        for (int i = 0; i < values.Count; i++)
        {
            ema = weight * ema + (1 - weight) * values[i];
            norm = weight * norm + (1 - weight);
            result[i] = ema / norm;
        }
        return result;
    }

    /// <summary>About <paramref name="target"/> round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].</summary>
    public static double[] NiceTicks(double lo, double hi, int target)
    {
        if (!(hi > lo)) (lo, hi) = lo == 0 ? (-1, 1) : (lo - Math.Abs(lo) * 0.1, hi + Math.Abs(hi) * 0.1);
        double raw = (hi - lo) / Math.Max(1, target), magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double norm = raw / magnitude;
        double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
        double first = Math.Floor(lo / step), last = Math.Ceiling(hi / step);
        var ticks = new double[(int)(last - first) + 1];
        for (int i = 0; i < ticks.Length; i++) ticks[i] = (first + i) * step;
        return ticks;
    }

    /// <summary>Ticks in log10 units: whole decades, plus 2× and 5× when the range spans fewer than three decades.</summary>
    static double[] LogTicks(double lo, double hi)
    {
        int first = (int)Math.Floor(lo), last = (int)Math.Ceiling(hi);
        if (last == first) last++;
        var ticks = new List<double>();
        for (int d = first; d <= last; d++)
        {
            ticks.Add(d);
            if (last - first < 3 && d < last) { ticks.Add(d + Math.Log10(2)); ticks.Add(d + Math.Log10(5)); }
        }
        return [.. ticks];
    }

    static string Label(double v, double[] ticks)
    {
        double step = ticks.Length > 1 ? Math.Abs(ticks[1] - ticks[0]) : Math.Abs(v);
        if (Math.Abs(v) < step * 1e-9) return "0";
        if (Math.Abs(v) >= 1e6 || Math.Abs(v) < 1e-3) return v.ToString("0.##E+0", CultureInfo.InvariantCulture);
        int decimals = step > 0 ? Math.Clamp(-(int)Math.Floor(Math.Log10(step) + 1e-9), 0, 6) : 2;
        return v.ToString("F" + decimals, CultureInfo.InvariantCulture);
    }

    /// <summary>Screen points; where there are more points than pixel columns, each column keeps its min and max.</summary>
    static List<(double X, double Y)> Reduce(double[] xs, double[] ys, Func<double, double> px, Func<double, double> py, int plotW)
    {
        var points = new List<(double, double)>();
        if (xs.Length <= 2 * plotW)
        {
            for (int i = 0; i < xs.Length; i++) points.Add((px(xs[i]), py(ys[i])));
            return points;
        }
        int column = int.MinValue, minAt = 0, maxAt = 0;
        void Flush()
        {
            if (column == int.MinValue) return;
            foreach (int i in minAt <= maxAt ? [minAt, maxAt] : new[] { maxAt, minAt }) points.Add((px(xs[i]), py(ys[i])));
        }
        for (int i = 0; i < xs.Length; i++)
        {
            int c = (int)Math.Floor(px(xs[i]));
            if (c != column) { Flush(); (column, minAt, maxAt) = (c, i, i); }
            else
            {
                if (ys[i] < ys[minAt]) minAt = i;
                if (ys[i] > ys[maxAt]) maxAt = i;
            }
        }
        Flush();
        return points;
    }

    static void Polyline(StringBuilder svg, List<(double X, double Y)> points, string colour, double width)
    {
        if (points.Count == 0) return;
        if (points.Count == 1)
        {
            svg.Append(CultureInfo.InvariantCulture, $"""<circle cx="{F(points[0].X)}" cy="{F(points[0].Y)}" r="{F(width + 1)}" fill="{colour}"/>""").Append('\n');
            return;
        }
        svg.Append(CultureInfo.InvariantCulture, $"""<polyline fill="none" stroke="{colour}" stroke-width="{F(width)}" stroke-linejoin="round" clip-path="url(#plot-area)" points=""").Append('"');
        foreach (var (x, y) in points) svg.Append(F(x)).Append(',').Append(F(y)).Append(' ');
        svg.Length--;
        svg.Append("\"/>\n");
    }

    static void Frame(StringBuilder svg, int plotW, int plotH) =>
        svg.Append(CultureInfo.InvariantCulture, $"""<rect x="{MarginLeft}" y="{MarginTop}" width="{plotW}" height="{plotH}" fill="none" stroke="{AxisColour}"/>""").Append('\n');

    static void Line(StringBuilder svg, double x1, double y1, double x2, double y2, string colour, double width = 1) =>
        svg.Append(CultureInfo.InvariantCulture, $"""<line x1="{F(x1)}" y1="{F(y1)}" x2="{F(x2)}" y2="{F(y2)}" stroke="{colour}" stroke-width="{F(width)}"/>""").Append('\n');

    static void Text(StringBuilder svg, double x, double y, string text, string anchor, int size, bool bold = false) =>
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{F(x)}" y="{F(y)}" text-anchor="{anchor}" font-size="{size}"{(bold ? " font-weight=\"bold\"" : "")}>{Escape(text)}</text>""").Append('\n');

    static (double Lo, double Hi) Range(double[] v) => (v.Min(), v.Max());

    static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
