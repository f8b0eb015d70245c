namespace Mdm.Kernels.Reference;

public static partial class Ref
{
    /// <summary>
    /// One matmul operand: its shape (2-D [r,c] or 3-D [batch,r,c]) and transpose flag. Get(bt, i, p) is op(x)[i,p] of
    /// batch bt (a 2-D or batch-1 operand reads its only matrix for every bt); At gives the flat index it came from.
    /// </summary>
    public readonly record struct MatOperand(int[] Shape, bool Trans)
    {
        public int Batch => Shape.Length == 3 ? Shape[0] : 1;
        public int StoredRows => Shape[^2];
        public int StoredCols => Shape[^1];
        public int Rows => Trans ? StoredCols : StoredRows;   // rows of op(x)
        public int Cols => Trans ? StoredRows : StoredCols;   // columns of op(x)
        public long At(int bt, int i, int p)
        {
            int b = Batch == 1 ? 0 : bt;
            int r = Trans ? p : i, c = Trans ? i : p;
            return ((long)b * StoredRows + r) * StoredCols + c;
        }
    }

    /// <summary>c[bt,i,j] = Σ_p op(a)[bt,i,p]·op(b)[bt,p,j]; also Σ|terms| per element (the error budget's scale).</summary>
    public static double[] MatMul(double[] a, int[] sa, bool ta, double[] b, int[] sb, bool tb, out int[] outShape, out double[] absSum)
    {
        var A = new MatOperand(sa, ta);
        var B = new MatOperand(sb, tb);
        int batch = Math.Max(A.Batch, B.Batch), m = A.Rows, k = A.Cols, n = B.Cols;
        if (B.Rows != k) throw new ArgumentException("Ref.MatMul: inner dimensions disagree");
        outShape = sa.Length == 3 || sb.Length == 3 ? [batch, m, n] : [m, n];
        var c = new double[(long)batch * m * n];
        absSum = new double[c.Length];
        for (int bt = 0; bt < batch; bt++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0, s1 = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double t = a[A.At(bt, i, p)] * b[B.At(bt, p, j)];
                        s += t; s1 += Math.Abs(t);
                    }
                    long o = ((long)bt * m + i) * n + j;
                    c[o] = s; absSum[o] = s1;
                }
        return c;
    }

    /// <summary>
    /// dL/da and dL/db for L = Σ dc·c: every term op(a)[i,p]·op(b)[p,j] of c[bt,i,j] sends dc·op(b)[p,j] to the element
    /// of a it read, and dc·op(a)[i,p] to that of b (so broadcast operands collect the sum over the batch).
    /// Also Σ|terms| per gradient element.
    /// </summary>
    public static (double[] da, double[] db, double[] daAbs, double[] dbAbs) MatMulBackward(double[] dc, double[] a, int[] sa, bool ta,
        double[] b, int[] sb, bool tb)
    {
        var A = new MatOperand(sa, ta);
        var B = new MatOperand(sb, tb);
        int batch = Math.Max(A.Batch, B.Batch), m = A.Rows, k = A.Cols, n = B.Cols;
        var da = new double[a.Length]; var db = new double[b.Length];
        var daAbs = new double[a.Length]; var dbAbs = new double[b.Length];
        for (int bt = 0; bt < batch; bt++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double g = dc[((long)bt * m + i) * n + j];
                    for (int p = 0; p < k; p++)
                    {
                        long ia = A.At(bt, i, p), ib = B.At(bt, p, j);
                        da[ia] += g * b[ib]; daAbs[ia] += Math.Abs(g * b[ib]);
                        db[ib] += g * a[ia]; dbAbs[ib] += Math.Abs(g * a[ia]);
                    }
                }
        return (da, db, daAbs, dbAbs);
    }

    /// <summary>y[r,o] = Σ_i x[r,i]·w[o,i] + bias[o] over all rows r of x viewed as [rows, in]; also Σ|terms|.</summary>
    public static double[] Linear(double[] x, double[] w, int outF, int inF, double[]? bias, out double[] absSum)
    {
        int rows = x.Length / inF;
        var y = new double[(long)rows * outF];
        absSum = new double[y.Length];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias?[o] ?? 0, s1 = Math.Abs(bias?[o] ?? 0);
                for (int i = 0; i < inF; i++) { double t = x[r * inF + i] * w[o * inF + i]; s += t; s1 += Math.Abs(t); }
                y[r * outF + o] = s; absSum[r * outF + o] = s1;
            }
        return y;
    }

    /// <summary>dx[r,i] = Σ_o dy[r,o]·w[o,i]; dw[o,i] = Σ_r dy[r,o]·x[r,i]; db[o] = Σ_r dy[r,o]; each with Σ|terms|.</summary>
    public static (double[] dx, double[] dw, double[] db, double[] dxAbs, double[] dwAbs, double[] dbAbs) LinearBackward(
        double[] dy, double[] x, double[] w, int outF, int inF)
    {
        int rows = x.Length / inF;
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[outF];
        var dxAbs = new double[x.Length]; var dwAbs = new double[w.Length]; var dbAbs = new double[outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double g = dy[r * outF + o];
                db[o] += g; dbAbs[o] += Math.Abs(g);
                for (int i = 0; i < inF; i++)
                {
                    dx[r * inF + i] += g * w[o * inF + i]; dxAbs[r * inF + i] += Math.Abs(g * w[o * inF + i]);
                    dw[o * inF + i] += g * x[r * inF + i]; dwAbs[o * inF + i] += Math.Abs(g * x[r * inF + i]);
                }
            }
        return (dx, dw, db, dxAbs, dwAbs, dbAbs);
    }
}
