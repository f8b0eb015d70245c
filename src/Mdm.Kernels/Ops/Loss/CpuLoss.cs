namespace Mdm.Kernels.Cpu;

// The fused diffusion loss on the CPU backend: rows in parallel, each row's Σ e² in float64.
public sealed partial class CpuBackend
{
    protected internal override void DiffusionLossForward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor perSample, Tensor loss, int rows, int rowLen)
    {
        var sums = new double[rows];
        ParallelRange(rows, rowLen * 4L, (r0, r1) =>
        {
            ReadOnlySpan<float> sp = F32(p), sx = F32(x), st = F32(t), c = F32(coef);
            for (int r = r0; r < r1; r++)
            {
                float a = c[3 * r], k = c[3 * r + 1];
                int at = r * rowLen;
                double s = 0;
                for (int j = 0; j < rowLen; j++)
                {
                    float e = a * sp[at + j] + k * sx[at + j] - st[at + j];
                    s += e * e;
                }
                sums[r] = s;
            }
        });
        Span<float> ps = F32(perSample), cw = F32(coef);
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            ps[r] = (float)(sums[r] / rowLen);
            total += cw[3 * r + 2] * (double)ps[r];
        }
        F32(loss)[0] = (float)total;
    }

    protected internal override void DiffusionLossBackward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor g,
        Tensor? dp, Tensor? dx, Tensor? dt, int rowLen)
    {
        int rows = p.Dim(0);
        float gradient = F32(g)[0];
        ParallelRange(rows, rowLen * 4L, (r0, r1) =>
        {
            ReadOnlySpan<float> sp = F32(p), sx = F32(x), st = F32(t), c = F32(coef);
            Span<float> op = dp is null ? default : F32(dp), ox = dx is null ? default : F32(dx), ot = dt is null ? default : F32(dt);
            for (int r = r0; r < r1; r++)
            {
                float a = c[3 * r], k = c[3 * r + 1], s = 2f * c[3 * r + 2] * gradient / rowLen;
                int at = r * rowLen;
                for (int j = 0; j < rowLen; j++)
                {
                    int i = at + j;
                    float e = a * sp[i] + k * sx[i] - st[i];
                    if (!op.IsEmpty) op[i] = s * a * e;
                    if (!ox.IsEmpty) ox[i] = s * k * e;
                    if (!ot.IsEmpty) ot[i] = -s * e;
                }
            }
        });
    }
}
