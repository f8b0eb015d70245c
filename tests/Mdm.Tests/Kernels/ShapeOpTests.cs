using Mdm.Kernels;
using Mdm.Kernels.Cpu;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>GELU, FiLM scale-shift, nearest ×2 upsample, average pooling, concat / split and permute against float64.</summary>
[BackendFixtures]
public class ShapeOpTests(BackendKind kind) : KernelFixture(kind)
{
    // ---- GELU -------------------------------------------------------------------------------------------------
    public static IEnumerable<int[]> GeluShapes() => [[9, 9], [113, 64], [2, 3, 9, 9], [1031]];

    [TestCaseSource(nameof(GeluShapes))]
    public void GeluForward(int[] shape)
    {
        var f = TestSeed.Uniform(Rng, Shape.Numel(shape), -6f, 6f);
        using var x = Upload(f, shape);
        using var y = Poisoned(shape);
        Ops.Gelu(x, y);
        Compare.AssertClose(Name("GeluForward", shape), y, Ref.Map(TestSeed.ToDouble(f), Ref.Gelu), Tolerance.F32Transcendental);
    }

    [TestCaseSource(nameof(GeluShapes))]
    public void GeluBackward(int[] shape)
    {
        var f = TestSeed.Uniform(Rng, Shape.Numel(shape), -6f, 6f);
        var (dy, rdy) = Input(shape);
        using var x = Upload(f, shape);
        using var dx = Poisoned(shape);
        using (dy) Ops.GeluBackward(x, dy, dx);
        var rx = TestSeed.ToDouble(f);
        var expected = new double[rx.Length];
        for (int i = 0; i < rx.Length; i++) expected[i] = rdy[i] * Ref.GeluGrad(rx[i]);
        Compare.AssertClose(Name("GeluBackward", shape), dx, expected, Tolerance.F32Transcendental);
    }

    [Test]
    public void GeluExtremeValues()
    {
        float[] v = [-10f, -6f, float.NaN, -5.5f, -3f, -1.5f, -1.4142135f, -1e-30f, 0f, 1e-30f, 1.4142135f, 3f, 10f, float.NaN];  // NaN in the vector body and in the tail
        using var x = Upload(v, v.Length);
        using var y = Poisoned(v.Length);
        Ops.Gelu(x, y);
        using var ones = B.Full(1f, v.Length);
        using var dx = Poisoned(v.Length);
        Ops.GeluBackward(x, ones, dx);
        var rv = TestSeed.ToDouble(v);
        Compare.AssertClose("GeluForward extremes", y, Ref.Map(rv, Ref.Gelu), Tolerance.F32Transcendental);
        Compare.AssertClose("GeluBackward extremes", dx, Ref.Map(rv, Ref.GeluGrad), Tolerance.F32Transcendental);
    }

    /// <summary>A dense sweep over [-8, 8] with a tight budget: checks the float erf behind GELU on this backend.</summary>
    [Test]
    public void GeluAccuracySweep()
    {
        const int n = 4097;
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = -8f + 16f * i / (n - 1);
        using var x = Upload(v, n);
        using var y = Poisoned(n);
        Ops.Gelu(x, y);
        using var ones = B.Full(1f, n);
        using var dx = Poisoned(n);
        Ops.GeluBackward(x, ones, dx);
        var rv = TestSeed.ToDouble(v);
        var tol = Kind == BackendKind.Cuda ? new Tolerance(5e-7, 4e-6) : new Tolerance(2e-7, 1e-6);   // CUDA exp is ex2.approx
        Compare.AssertClose("GeluForward sweep", y, Ref.Map(rv, Ref.Gelu), tol);
        Compare.AssertClose("GeluBackward sweep", dx, Ref.Map(rv, Ref.GeluGrad), tol);
    }

    // ---- FiLM scale-shift ---------------------------------------------------------------------------------------
    public static IEnumerable<int[]> FilmShapes() => [[2, 3, 9, 9], [3, 5, 113], [4, 7], [2, 2, 3, 5, 7]];

    [TestCaseSource(nameof(FilmShapes))]
    public void ScaleShiftForward(int[] shape)
    {
        int[] ab = [shape[0], shape[1]];
        var (x, rx) = Input(shape);
        var (a, ra) = Input(ab);
        var (b, rb) = Input(ab);
        using (x) using (a) using (b)
        {
            using var y = Poisoned(shape);
            Ops.ScaleShift(x, a, b, y);
            var scale = Ref.ScaleShift(Ref.Map(rx, Math.Abs), shape, Ref.Map(ra, v => Math.Abs(1 + v) - 1), Ref.Map(rb, Math.Abs));
            Compare.AssertClose(Name("ScaleShiftForward", shape), y, Ref.ScaleShift(rx, shape, ra, rb), Tolerance.F32Elementwise, scale);
        }
    }

    [TestCaseSource(nameof(FilmShapes))]
    public void ScaleShiftBackward(int[] shape)
    {
        int[] ab = [shape[0], shape[1]];
        var (x, rx) = Input(shape);
        var (a, ra) = Input(ab);
        var (dy, rdy) = Input(shape);
        using (x) using (a) using (dy)
        {
            using Tensor dx = Poisoned(shape), da = Poisoned(ab), db = Poisoned(ab);
            Ops.ScaleShiftBackward(x, a, dy, dx, da, db);
            var (edx, eda, edb, daScale, dbScale) = Ref.ScaleShiftBackward(rx, shape, ra, rdy);
            Compare.AssertClose(Name("ScaleShiftBackward.dx", shape), dx, edx, Tolerance.F32Elementwise);
            Compare.AssertClose(Name("ScaleShiftBackward.da", shape), da, eda, new Tolerance(1e-6, 1e-5), daScale);
            Compare.AssertClose(Name("ScaleShiftBackward.db", shape), db, edb, new Tolerance(1e-6, 1e-5), dbScale);
        }
    }

    // ---- nearest ×2 upsample ------------------------------------------------------------------------------------
    public static IEnumerable<int[]> UpsampleShapes() => [[1, 1, 9, 9], [2, 3, 4, 7], [1, 2, 1, 1], [2, 1, 5, 3]];

    [TestCaseSource(nameof(UpsampleShapes))]
    public void UpsampleNearest2xForward(int[] shape)
    {
        var (x, rx) = Input(shape);
        using (x)
        {
            int[] outShape = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
            using var y = Poisoned(outShape);
            Ops.UpsampleNearest2x(x, y);
            Compare.AssertClose(Name("UpsampleNearest2xForward", shape), y, Ref.UpsampleNearest2x(rx, shape), Tolerance.F32Exact);
        }
    }

    [TestCaseSource(nameof(UpsampleShapes))]
    public void UpsampleNearest2xBackward(int[] shape)
    {
        int[] outShape = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
        var (dy, rdy) = Input(outShape);
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.UpsampleNearest2xBackward(dy, dx);
            var expected = Ref.UpsampleNearest2xBackward(rdy, shape, out var absSum);
            Compare.AssertClose(Name("UpsampleNearest2xBackward", shape), dx, expected, new Tolerance(1e-7, 1e-6), absSum);
        }
    }

    // ---- average pooling ----------------------------------------------------------------------------------------
    public static IEnumerable<TestCaseData> PoolCases()
    {
        yield return new TestCaseData(new[] { 1, 2, 10, 14 }, 2).SetArgDisplayNames("1x2x10x14 s2");
        yield return new TestCaseData(new[] { 2, 1, 8, 8 }, 4).SetArgDisplayNames("2x1x8x8 s4");
        yield return new TestCaseData(new[] { 2, 3, 6, 18 }, 2).SetArgDisplayNames("2x3x6x18 s2");
        yield return new TestCaseData(new[] { 1, 3, 12, 4 }, 4).SetArgDisplayNames("1x3x12x4 s4");
    }

    [TestCaseSource(nameof(PoolCases))]
    public void AvgPool2dForward(int[] shape, int s)
    {
        var (x, rx) = Input(shape);
        using (x)
        {
            using var y = Poisoned(shape[0], shape[1], shape[2] / s, shape[3] / s);
            Ops.AvgPool2d(x, s, y);
            var expected = Ref.AvgPool2d(rx, shape, s, out var absMean);
            Compare.AssertClose(Name($"AvgPool2dForward s={s}", shape), y, expected, new Tolerance(1e-7, 1e-6), absMean);
        }
    }

    [TestCaseSource(nameof(PoolCases))]
    public void AvgPool2dBackward(int[] shape, int s)
    {
        int[] outShape = [shape[0], shape[1], shape[2] / s, shape[3] / s];
        var (dy, rdy) = Input(outShape);
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.AvgPool2dBackward(dy, s, dx);
            Compare.AssertClose(Name($"AvgPool2dBackward s={s}", shape), dx, Ref.AvgPool2dBackward(rdy, shape, s), Tolerance.F32Elementwise);
        }
    }

    // ---- concat / split -----------------------------------------------------------------------------------------
    public static IEnumerable<TestCaseData> ConcatCases()
    {
        yield return new TestCaseData(new[] { new[] { 2, 3, 9, 9 }, new[] { 2, 5, 9, 9 } }, 1).SetArgDisplayNames("2x3x9x9+2x5x9x9 axis1");
        yield return new TestCaseData(new[] { new[] { 1, 3, 4 }, new[] { 2, 3, 4 }, new[] { 4, 3, 4 } }, 0).SetArgDisplayNames("three axis0");
        yield return new TestCaseData(new[] { new[] { 2, 3, 1 }, new[] { 2, 3, 5 }, new[] { 2, 3, 2 } }, -1).SetArgDisplayNames("three last axis");
        yield return new TestCaseData(new[] { new[] { 3, 0, 7 }, new[] { 3, 2, 7 }, new[] { 3, 1, 7 } }, 1).SetArgDisplayNames("with empty axis1");
    }

    public static IEnumerable<TestCaseData> NarrowCases()
    {
        yield return new TestCaseData(new[] { 2, 9, 9, 9 }, 1, 2, 5).SetArgDisplayNames("2x9x9x9 axis1 [2,7)");
        yield return new TestCaseData(new[] { 3, 113, 5 }, -2, 0, 113).SetArgDisplayNames("3x113x5 axis-2 whole");
        yield return new TestCaseData(new[] { 4, 7, 13 }, 2, 12, 1).SetArgDisplayNames("4x7x13 last axis [12,13)");
        yield return new TestCaseData(new[] { 5, 3, 2 }, 0, 1, 3).SetArgDisplayNames("5x3x2 axis0 [1,4)");
        yield return new TestCaseData(new[] { 2, 6, 3 }, 1, 4, 0).SetArgDisplayNames("2x6x3 empty slice");
    }

    [TestCaseSource(nameof(NarrowCases))]
    public void NarrowForward(int[] shape, int axis, int start, int length)
    {
        int ax = axis < 0 ? axis + shape.Length : axis;
        var (x, rx) = Input(shape);
        using (x)
        {
            var outShape = (int[])shape.Clone();
            outShape[ax] = length;
            using var y = Poisoned(outShape);
            Ops.Narrow(x, axis, start, length, y);
            var expected = Ref.Split(rx, shape, [start, length, shape[ax] - start - length], ax)[1];
            Compare.AssertClose(Name($"Narrow axis {axis} [{start},{start + length})", shape), y, expected, Tolerance.F32Exact);
        }
    }

    /// <summary>The gradient of narrow: dy inside the slice, exact zeros around it (the output is poisoned first).</summary>
    [TestCaseSource(nameof(NarrowCases))]
    public void NarrowBackward(int[] shape, int axis, int start, int length)
    {
        int ax = axis < 0 ? axis + shape.Length : axis;
        var dyShape = (int[])shape.Clone();
        dyShape[ax] = length;
        var (dy, rdy) = Input(dyShape);
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.NarrowBackward(dy, shape, axis, start, dx);
            var zerosBefore = (int[])shape.Clone(); zerosBefore[ax] = start;
            var zerosAfter = (int[])shape.Clone(); zerosAfter[ax] = shape[ax] - start - length;
            var expected = Ref.Concat([new double[Shape.Numel(zerosBefore)], rdy, new double[Shape.Numel(zerosAfter)]],
                [zerosBefore, dyShape, zerosAfter], ax, out _);
            Compare.AssertClose(Name($"NarrowBackward axis {axis} [{start},{start + length})", shape), dx, expected, Tolerance.F32Exact);
        }
    }

    [TestCaseSource(nameof(ConcatCases))]
    public void ConcatForward(int[][] shapes, int axis)
    {
        int ax = axis < 0 ? axis + shapes[0].Length : axis;
        var inputs = shapes.Select(s => Input(s)).ToArray();
        try
        {
            var expected = Ref.Concat(inputs.Select(i => i.r).ToArray(), shapes, ax, out var outShape);
            using var y = Poisoned(outShape);
            Ops.Concat(inputs.Select(i => i.t).ToArray(), axis, y);
            Compare.AssertClose(Name($"ConcatForward axis {axis}", shapes), y, expected, Tolerance.F32Exact);
        }
        finally { foreach (var (t, _) in inputs) t.Dispose(); }
    }

    /// <summary>The backward of Concat is Split of dy into the inputs' sizes.</summary>
    [TestCaseSource(nameof(ConcatCases))]
    public void ConcatBackwardSplit(int[][] shapes, int axis)
    {
        int ax = axis < 0 ? axis + shapes[0].Length : axis;
        var outShape = (int[])shapes[0].Clone();
        outShape[ax] = shapes.Sum(s => s[ax]);
        int[] sizes = shapes.Select(s => s[ax]).ToArray();
        var (dy, rdy) = Input(outShape);
        var parts = shapes.Select(s => Poisoned(s)).ToArray();
        try
        {
            Ops.Split(dy, sizes, axis, parts);
            var expected = Ref.Split(rdy, outShape, sizes, ax);
            for (int k = 0; k < parts.Length; k++)
                Compare.AssertClose(Name($"Split part {k} axis {axis}", outShape), parts[k], expected[k], Tolerance.F32Exact);
        }
        finally { dy.Dispose(); foreach (var t in parts) t.Dispose(); }
    }

    [Test]
    public void SplitAllocatesAndRoundTrips()
    {
        int[] shape = [2, 9, 5];
        var (x, rx) = Input(shape);
        using (x)
        {
            var parts = Ops.Split(x, [4, 0, 5], 1);
            try
            {
                Assert.That(parts.Select(p => p.ShapeString), Is.EqualTo(new[] { "[2,4,5]", "[2,0,5]", "[2,5,5]" }));
                using var back = Ops.Concat(parts, 1);
                Compare.AssertClose("Concat(Split(x))", back, rx, Tolerance.F32Exact);
            }
            finally { foreach (var p in parts) p.Dispose(); }
        }
    }

    // ---- permute ------------------------------------------------------------------------------------------------
    public static IEnumerable<TestCaseData> PermuteCases()
    {
        yield return new TestCaseData(new[] { 2, 3, 4, 5 }, new[] { 0, 2, 1, 3 }).SetArgDisplayNames("2x3x4x5 (0,2,1,3)");
        yield return new TestCaseData(new[] { 2, 3, 4, 5 }, new[] { 3, 1, 0, 2 }).SetArgDisplayNames("2x3x4x5 (3,1,0,2)");
        yield return new TestCaseData(new[] { 2, 3, 1, 4, 2, 3 }, new[] { 5, 0, 3, 1, 4, 2 }).SetArgDisplayNames("rank6 (5,0,3,1,4,2)");
        yield return new TestCaseData(new[] { 3, 2, 2, 3, 2, 2 }, new[] { 1, 0, 2, 3, 5, 4 }).SetArgDisplayNames("rank6 (1,0,2,3,5,4)");
        yield return new TestCaseData(new[] { 9, 113 }, new[] { 1, 0 }).SetArgDisplayNames("9x113 transpose");
        yield return new TestCaseData(new[] { 2, 3, 4 }, new[] { 0, 1, 2 }).SetArgDisplayNames("2x3x4 identity");
    }

    [TestCaseSource(nameof(PermuteCases))]
    public void PermuteForward(int[] shape, int[] dims)
    {
        var (x, rx) = Input(shape);
        using (x)
        {
            using var y = Poisoned(Ref.PermutedShape(shape, dims));
            Ops.Permute(x, dims, y);
            Compare.AssertClose(Name($"PermuteForward ({string.Join(",", dims)})", shape), y, Ref.Permute(rx, shape, dims), Tolerance.F32Exact);
        }
    }

    [TestCaseSource(nameof(PermuteCases))]
    public void PermuteBackward(int[] shape, int[] dims)
    {
        var (dy, rdy) = Input(Ref.PermutedShape(shape, dims));
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.PermuteBackward(dy, dims, dx);
            Compare.AssertClose(Name($"PermuteBackward ({string.Join(",", dims)})", shape), dx, Ref.PermuteBackward(rdy, shape, dims), Tolerance.F32Exact);
        }
    }

    // ---- bf16 values moved as they are (autocast's bf16 storage) ------------------------------------------------
    /// <summary>Copies move bits: the result must equal the float64 reference's values, which are bf16 values, exactly.</summary>
    void AssertBf16Exact(string what, Tensor actual, double[] expected)
    {
        Assert.That(actual.DType, Is.EqualTo(DType.BF16), what);
        var bits = actual.ToBF16Bits();
        Assert.That(bits.Length, Is.EqualTo(expected.Length), what);
        for (int i = 0; i < bits.Length; i++)
            Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat((float)expected[i])), $"{what}: element {i}\n{TestSeed.Describe()}");
    }

    [TestCaseSource(nameof(PermuteCases))]
    public void PermuteForwardBF16(int[] shape, int[] dims)
    {
        var (x, rx) = BF16Input(shape);
        using (x)
        {
            using var y = PoisonedBF16(Ref.PermutedShape(shape, dims));
            Ops.Permute(x, dims, y);
            AssertBf16Exact(Name($"PermuteForward bf16 ({string.Join(",", dims)})", shape), y, Ref.Permute(rx, shape, dims));
        }
    }

    [TestCaseSource(nameof(ConcatCases))]
    public void ConcatAndSplitBF16(int[][] shapes, int axis)
    {
        int ax = axis < 0 ? axis + shapes[0].Length : axis;
        var inputs = shapes.Select(s => BF16Input(s)).ToArray();
        try
        {
            var expected = Ref.Concat(inputs.Select(i => i.r).ToArray(), shapes, ax, out var outShape);
            using var y = PoisonedBF16(outShape);
            Ops.Concat(inputs.Select(i => i.t).ToArray(), axis, y);
            AssertBf16Exact(Name($"ConcatForward bf16 axis {axis}", shapes), y, expected);
            var parts = Ops.Split(y, shapes.Select(s => s[ax]).ToArray(), axis);
            try
            {
                for (int k = 0; k < parts.Length; k++) AssertBf16Exact(Name($"Split bf16 part {k} axis {axis}", outShape), parts[k], inputs[k].r);
            }
            finally { foreach (var t in parts) t.Dispose(); }
        }
        finally { foreach (var (t, _) in inputs) t.Dispose(); }
    }

    [Test]
    public void CopyBF16()
    {
        var (x, rx) = BF16Input(3, 37);
        using (x)
        {
            using var y = Ops.Copy(x);
            AssertBf16Exact(Name("Copy bf16", [3, 37]), y, rx);
            using var mixed = B.Zeros(2, 37);
            var e = Assert.Throws<ArgumentException>(() => Ops.Concat([x, mixed], 0))!;
            Assert.That(e.Message, Does.Contain("Concat: tensors of different dtypes (BF16 [3,37] and F32 [2,37])"));
        }
    }

    // ---- bad arguments ------------------------------------------------------------------------------------------
    static void Throws(string op, Action call, params string[] mentions)
    {
        var e = Assert.Throws<ArgumentException>(call)!;
        Assert.That(e.Message, Does.StartWith(op + ":"), e.Message);
        foreach (var m in mentions) Assert.That(e.Message, Does.Contain(m), e.Message);
    }

    [Test]
    public void BadArgumentsThrow()
    {
        using var x = B.Zeros(2, 3, 4, 6);
        using var a23 = B.Zeros(2, 3);
        using var a32 = B.Zeros(3, 2);
        using var a2311 = B.Zeros(2, 3, 1, 1);
        using var bf = B.Empty(DType.BF16, 2, 3, 4, 6);
        using var other = B.Zeros(2, 3, 4, 5);
        using var v = B.Zeros(6);
        // GELU
        Throws("Gelu", () => Ops.Gelu(bf, x), "output is F32, expected BF16");   // y has x's type
        Throws("GeluBackward", () => Ops.GeluBackward(x, bf), "expected F32, got BF16 tensor [2,3,4,6]");
        Throws("GeluBackward", () => Ops.GeluBackward(x, other), "[2,3,4,6]", "[2,3,4,5]");
        Throws("Gelu", () => Ops.Gelu(x, other), "[2,3,4,5]", "[2,3,4,6]");
        // FiLM: a / b shape mismatches
        Throws("ScaleShift", () => Ops.ScaleShift(x, a32, a23), "[3,2]", "[2,3,4,6]");
        Throws("ScaleShift", () => Ops.ScaleShift(x, a23, a32), "[3,2]", "[2,3,4,6]");
        Throws("ScaleShift", () => Ops.ScaleShift(x, a2311, a2311), "[2,3,1,1]");
        Throws("ScaleShift", () => Ops.ScaleShift(v, a23, a23), "[6]");
        Throws("ScaleShiftBackward", () => Ops.ScaleShiftBackward(x, a32, x), "[3,2]", "[2,3,4,6]");
        Throws("ScaleShiftBackward", () => Ops.ScaleShiftBackward(x, a23, other), "[2,3,4,6]", "[2,3,4,5]");
        // upsample / pooling
        Throws("UpsampleNearest2x", () => Ops.UpsampleNearest2x(v), "[6]");
        Throws("UpsampleNearest2xBackward", () => Ops.UpsampleNearest2xBackward(other), "[2,3,4,5]");
        Throws("AvgPool2d", () => Ops.AvgPool2d(other, 2), "[2,3,4,5]", "2");
        Throws("AvgPool2d", () => Ops.AvgPool2d(x, 4), "[2,3,4,6]", "4");
        Throws("AvgPool2d", () => Ops.AvgPool2d(x, 0), "[2,3,4,6]");
        Throws("AvgPool2d", () => Ops.AvgPool2d(v, 2), "[6]");
        Throws("AvgPool2dBackward", () => Ops.AvgPool2dBackward(x, 2, other), "[2,3,4,5]", "[2,3,8,12]");
        // concat: shapes disagreeing off the axis, rank mismatch, bad axis
        Throws("Concat", () => Ops.Concat([x, other], 1), "[2,3,4,6]", "[2,3,4,5]");
        Throws("Concat", () => Ops.Concat([x, v], 0), "[2,3,4,6]", "[6]");
        Throws("Concat", () => Ops.Concat([x, x], 4), "axis 4");
        Throws("Concat", () => Ops.Concat([x, bf], 1), "BF16");
        Throws("Concat", () => Ops.Concat([], 0));
        // split: sizes not summing to the axis length
        Throws("Split", () => Ops.Split(x, [1, 1], 1), "[1,1]", "[2,3,4,6]", "3");
        Throws("Split", () => Ops.Split(x, [4, -1], 1), "[4,-1]");
        Throws("Split", () => Ops.Split(x, [3], -5), "axis -5");
        // permute: invalid permutations
        Throws("Permute", () => Ops.Permute(x, [0, 1, 2]), "[0,1,2]", "[2,3,4,6]");
        Throws("Permute", () => Ops.Permute(x, [0, 1, 1, 3]), "repeated");
        Throws("Permute", () => Ops.Permute(x, [0, 1, 2, 4]), "out of range");
        Throws("PermuteBackward", () => Ops.PermuteBackward(x, [3, 3, 1, 0]), "repeated");
        using var r7 = B.Zeros(1, 1, 1, 1, 1, 1, 2);
        Throws("Permute", () => Ops.Permute(r7, [0, 1, 2, 3, 4, 5, 6]), "rank 7");
    }

    [Test]
    public void DifferentDevicesThrow()
    {
        using var cpu = new CpuBackend();
        using var x = B.Zeros(2, 3, 4, 4);
        using var a = cpu.Zeros(2, 3);
        using var y = cpu.Zeros(2, 3, 4, 4);
        Throws("ScaleShift", () => Ops.ScaleShift(x, a, a), "different devices");
        Throws("Concat", () => Ops.Concat([x, y], 1), "different devices");
        Throws("Gelu", () => Ops.Gelu(x, y), "different devices");
    }
}

/// <summary>The float64 references of the Shape family: erf against published values, each backward against finite differences.</summary>
public class ShapeReferenceGradcheck
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();

    double[] R(int n, float lo = -2f, float hi = 2f) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, lo, hi));

    [Test]
    public void ReferenceErfMatchesPublishedValues()
    {
        // erf / erfc values from standard tables (Abramowitz & Stegun 7.1; DLMF 7.2) to 15+ digits.
        (double x, double erf)[] erf = [(0.1, 0.1124629160182849), (0.5, 0.5204998778130465), (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753108), (1.9, 0.9927904292352575), (2.0, 0.9953222650189527), (2.5, 0.9995930479825550), (3.0, 0.9999779095030014)];
        foreach (var (x, e) in erf)
        {
            Assert.That(Ref.Erf(x), Is.EqualTo(e).Within(2e-15), $"erf({x})");
            Assert.That(Ref.Erf(-x), Is.EqualTo(-e).Within(2e-15), $"erf({-x})");
        }
        (double x, double erfc)[] erfc = [(2.0, 4.677734981047266e-03), (3.0, 2.209049699858544e-05), (4.0, 1.541725790028002e-08),
            (5.0, 1.537459794428035e-12), (6.0, 2.151973671249892e-17)];
        foreach (var (x, e) in erfc) Assert.That(Ref.Erfc(x), Is.EqualTo(e).Within(1e-13 * e), $"erfc({x})");
        // Either side of the hand-over at 2 (series below, continued fraction from 2 on).
        Assert.That(Ref.Erfc(1.9), Is.EqualTo(7.209570764742524e-03).Within(1e-13 * 7.2e-3), "erfc(1.9)");
    }

    /// <summary>The float erf used by every backend: max abs error ≤ 2e-7 against the float64 reference.</summary>
    [Test]
    public void Erf32WithinBudget()
    {
        double worst = 0, at = 0;
        void Check(float x)
        {
            double err = Math.Abs(Erf32.Erf(x) - Ref.Erf(x));
            if (!(err <= worst)) { worst = err; at = x; }
        }
        for (int i = -600000; i <= 600000; i++) Check(i * 1e-5f);
        foreach (float x in new[] { 0f, -0f, 1e-30f, -1e-30f, 1e-8f, 0.99999994f, 1f, 1.0000001f, 3.9999998f, 4f, 10f, -10f, 1e30f, -1e30f })
            Check(x);
        for (int i = 0; i < 100000; i++) Check((float)(rng.NextDouble() * 12 - 6));
        TestContext.Out.WriteLine($"Erf32: max abs error {worst:G3} at x = {at:G9}");
        Assert.That(worst, Is.LessThanOrEqualTo(2e-7), $"worst at x = {at:G9}\n{TestSeed.Describe()}");
        Assert.That(float.IsNaN(Erf32.Erf(float.NaN)), Is.True, "erf(NaN)");
        Assert.That(Erf32.Erf(float.PositiveInfinity), Is.EqualTo(1f));
        Assert.That(Erf32.Erf(float.NegativeInfinity), Is.EqualTo(-1f));
    }

    [Test]
    public void Gelu()
    {
        var x = R(60, -5f, 5f); var dy = R(60);
        var g = new double[60];
        for (int i = 0; i < 60; i++) g[i] = dy[i] * Ref.GeluGrad(x[i]);
        Gradcheck.Check("Gelu", v => Ref.Map(v, Ref.Gelu), x, dy, g);
    }

    [Test]
    public void ScaleShift()
    {
        int[] shape = [2, 3, 2, 3];
        var x = R(36); var a = R(6); var b = R(6); var dy = R(36);
        var (dx, da, db, _, _) = Ref.ScaleShiftBackward(x, shape, a, dy);
        Gradcheck.Check("ScaleShift.dx", v => Ref.ScaleShift(v, shape, a, b), x, dy, dx);
        Gradcheck.Check("ScaleShift.da", v => Ref.ScaleShift(x, shape, v, b), a, dy, da);
        Gradcheck.Check("ScaleShift.db", v => Ref.ScaleShift(x, shape, a, v), b, dy, db);
    }

    [Test]
    public void UpsampleNearest2x()
    {
        int[] shape = [2, 1, 3, 2];
        var x = R(12); var dy = R(48);
        Gradcheck.Check("UpsampleNearest2x", v => Ref.UpsampleNearest2x(v, shape), x, dy, Ref.UpsampleNearest2xBackward(dy, shape, out _));
    }

    [TestCase(2), TestCase(4)]
    public void AvgPool2d(int s)
    {
        int[] shape = [1, 2, 2 * s, s];
        var x = R(4 * s * s); var dy = R(4);
        Gradcheck.Check($"AvgPool2d s={s}", v => Ref.AvgPool2d(v, shape, s, out _), x, dy, Ref.AvgPool2dBackward(dy, shape, s));
    }

    [Test]
    public void ConcatBackwardIsSplit()
    {
        int[][] shapes = [[2, 1, 3], [2, 2, 3], [2, 3, 3]];
        var xs = shapes.Select(s => R((int)Ref.Numel(s))).ToArray();
        var dy = R(2 * 6 * 3);
        var grads = Ref.Split(dy, [2, 6, 3], [1, 2, 3], 1);
        for (int k = 0; k < xs.Length; k++)
        {
            int kk = k;
            Gradcheck.Check($"Concat.dx{k}", v => { var c = (double[][])xs.Clone(); c[kk] = v; return Ref.Concat(c, shapes, 1, out _); }, xs[k], dy, grads[k]);
        }
    }

    [Test]
    public void Permute()
    {
        int[] shape = [2, 3, 1, 4], dims = [3, 0, 2, 1];
        var x = R(24); var dy = R(24);
        Gradcheck.Check("Permute", v => Ref.Permute(v, shape, dims), x, dy, Ref.PermuteBackward(dy, shape, dims));
    }
}
