"""oneDNN's convolution primitives (``chainrule.backend._onednn_conv``) against PyTorch: forward, gradient of the
input, gradients of the weights and bias, on a grid of the geometries where convolutions go wrong (strides that do
not divide, dilation with stride, padding per side, groups and depthwise, 1x1 kernels, a kernel larger than the
input, odd sizes, a batch of one), in float32 and in every input layout; outputs are channels-last; a repeated call
creates no primitive.

Tolerance (float32): every element within 1e-5 x the largest magnitude of the reference, which PyTorch computes in
float64 from the same float32 inputs (float32 accumulation over a few thousand products errs by ~1e-6 of it).
bfloat16 (``precision="bfloat16"``) runs where the CPU has bfloat16 convolutions (AVX-512 BF16 / AMX) and is held to
a float64 reference on the bfloat16-rounded operands; it is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from chainrule.backend import _onednn_conv as oc  # noqa: E402
from chainrule.backend.conv_geometry import ConvGeometry  # noqa: E402

PRIMS, WHY = oc.primitives()
pytestmark = pytest.mark.skipif(PRIMS is None, reason=f"oneDNN: {WHY}")
BF16_WHY = WHY if PRIMS is None else PRIMS.bf16_problem()

# (N, C, H, W), O, (kh, kw), stride, ((top, bottom), (left, right)), dilation, groups
GRID = [
    pytest.param((2, 3, 9, 9), 4, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, id="3x3-same"),
    pytest.param((2, 5, 10, 11), 6, (3, 3), (2, 2), ((0, 0), (0, 0)), (1, 1), 1, id="stride2-not-dividing"),
    pytest.param((1, 4, 13, 8), 3, (2, 3), (3, 2), ((1, 1), (0, 2)), (1, 1), 1, id="stride3-batch1-rect"),
    pytest.param((2, 4, 12, 12), 6, (3, 3), (2, 2), ((2, 2), (2, 2)), (2, 2), 2, id="dilation-with-stride-groups2"),
    pytest.param((2, 3, 8, 9), 5, (3, 2), (1, 1), ((1, 0), (2, 1)), (1, 3), 1, id="asymmetric-padding"),
    pytest.param((2, 8, 7, 7), 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 8, id="depthwise"),
    pytest.param((2, 4, 7, 6), 8, (3, 3), (2, 1), ((1, 1), (1, 1)), (1, 1), 4, id="depthwise-multiplier2"),
    pytest.param((3, 6, 5, 7), 9, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, id="1x1"),
    pytest.param((2, 6, 9, 9), 4, (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 2, id="1x1-stride2-groups2"),
    pytest.param((2, 2, 3, 3), 3, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, id="kernel-larger-than-input"),
    pytest.param((2, 3, 32, 32), 24, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, id="airbench-whiten-2x2"),
    pytest.param((2, 16, 7, 7), 16, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, id="airbench-3x3"),
]


def reference(x, w, b, gy, stride, padding, dilation, groups):
    """PyTorch in float64 on the same values: (y, gx, gw, gb); padding per side through F.pad."""
    (top, bottom), (left, right) = padding
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride, 0, dilation, groups)
    y.backward(torch.tensor(gy, dtype=torch.float64))
    return (y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy())


def close(ours, ref, scale=1e-5):
    assert ours.shape == ref.shape
    err, top = np.abs(ours.astype(np.float64) - ref).max(), np.abs(ref).max()
    assert err <= scale * top + 1e-7, f"max error {err:.3g} > {scale} x {top:.3g}"


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "nchw":
        return np.ascontiguousarray(x)
    if kind == "channels_last":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    wide = np.zeros(x.shape[:3] + (x.shape[3] + 3,), dtype=x.dtype)  # a slice: no unit stride along anything whole
    wide[..., 1:1 + x.shape[3]] = x
    return wide[..., 1:1 + x.shape[3]]


def problem(shape, out_ch, kernel, geom, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_ch, shape[1] // geom.groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(out_ch).astype(np.float32) if bias else None
    ho, wo = geom.output_size(shape[2:], kernel)
    gy = rng.standard_normal((shape[0], out_ch, ho, wo)).astype(np.float32)
    return x, w, b, gy


@pytest.mark.parametrize("shape, out_ch, kernel, stride, padding, dilation, groups", GRID)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_matches_pytorch(shape, out_ch, kernel, stride, padding, dilation, groups, bias):
    geom = ConvGeometry(stride, padding, dilation, groups)
    x, w, b, gy = problem(shape, out_ch, kernel, geom, bias)
    y_ref, gx_ref, gw_ref, gb_ref = reference(x, w, b, gy, stride, padding, dilation, groups)
    x_cl, gy_cl = layout(x, "channels_last"), layout(gy, "channels_last")

    y = oc.conv2d_forward(x_cl, w, b, geom)
    gx = oc.conv2d_backward_data(gy_cl, w, shape[2:], geom)
    gw, gb = oc.conv2d_backward_weight(x_cl, gy_cl, kernel, geom, bias)

    close(y, y_ref)
    close(gx, gx_ref)
    close(gw, gw_ref)
    if bias:
        close(gb, gb_ref)
    else:
        assert gb is None
    assert oc.is_channels_last(y) and oc.is_channels_last(gx)
    assert gw.flags.c_contiguous and gw.dtype == np.float32 and y.dtype == gx.dtype == np.float32


@pytest.mark.parametrize("kind", ["nchw", "channels_last", "sliced"])
def test_any_input_layout_gives_the_same_values(kind):
    geom = ConvGeometry((2, 1), ((1, 0), (1, 1)), (1, 1), 2)
    x, w, b, gy = problem((2, 4, 9, 8), 6, (3, 3), geom)
    y_ref, gx_ref, gw_ref, gb_ref = reference(x, w, b, gy, geom.stride, geom.padding, geom.dilation, geom.groups)
    w_view = np.asfortranarray(w)  # weights in any layout too
    close(oc.conv2d_forward(layout(x, kind), w_view, b, geom), y_ref)
    close(oc.conv2d_backward_data(layout(gy, kind), w_view, (9, 8), geom), gx_ref)
    gw, gb = oc.conv2d_backward_weight(layout(x, kind), layout(gy, kind), (3, 3), geom, True)
    close(gw, gw_ref)
    close(gb, gb_ref)


def test_float64_inputs_are_computed_in_float32():
    """The kernels are float32: float64 arrays (which the backend keeps on NumPy) are converted, not misread."""
    geom = ConvGeometry((1, 1), ((1, 1), (1, 1)))
    x, w, b, gy = problem((1, 2, 5, 5), 3, (3, 3), geom)
    y_ref = reference(x, w, b, gy, geom.stride, geom.padding, geom.dilation, 1)[0]
    close(oc.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), geom), y_ref)


def test_a_repeated_step_creates_no_primitive():
    geom = ConvGeometry((1, 1), ((1, 1), (1, 1)))
    x, w, b, gy = problem((4, 8, 6, 6), 8, (3, 3), geom, seed=1)
    x, gy = layout(x, "channels_last"), layout(gy, "channels_last")

    def step():
        oc.conv2d_forward(x, w, b, geom)
        oc.conv2d_backward_data(gy, w, (6, 6), geom)
        return oc.conv2d_backward_weight(x, gy, (3, 3), geom, True)

    first = step()
    created = PRIMS.created
    again = step()
    assert PRIMS.created == created
    np.testing.assert_array_equal(first[0], again[0])  # and a cache hit computes the same thing


@pytest.mark.parametrize("kernel, in_ch", [((2, 2), 3), ((3, 3), 24), ((3, 3), 64), ((3, 3), 128)])
def test_the_benchmark_nets_convolutions_run_optimised_kernels(kernel, in_ch):
    """Every direction of the airbench net's convolutions runs a JIT-compiled kernel, never oneDNN's reference
    loops (which an unsupported layout combination silently selects, ~10x slower)."""
    geom = ConvGeometry((1, 1), ((0, 0), (0, 0)) if kernel == (2, 2) else ((1, 1), (1, 1)))
    x, w, b, gy = problem((2, in_ch, 7, 7), 16, kernel, geom, seed=2)
    oc.conv2d_forward(x, w, b, geom)
    oc.conv2d_backward_data(gy, w, (7, 7), geom)
    oc.conv2d_backward_weight(x, gy, kernel, geom, True)
    impls = {key[0]: plan.impl for key, plan in PRIMS.cache.items() if key[1] == x.shape}
    assert set(impls) == {"forward", "backward_data", "backward_weight"}
    for direction, impl in impls.items():
        assert impl != "?" and not impl.startswith("ref"), f"{direction} runs {impl}"


@pytest.mark.skipif(bool(BF16_WHY), reason=f"bfloat16 convolutions: {BF16_WHY}")
@pytest.mark.parametrize("shape, out_ch, kernel, stride, padding, dilation, groups", GRID[:6])
def test_bfloat16_rounds_the_operands_and_accumulates_in_float32(shape, out_ch, kernel, stride, padding, dilation,
                                                                 groups):
    geom = ConvGeometry(stride, padding, dilation, groups)
    x, w, b, gy = problem(shape, out_ch, kernel, geom)
    xr, wr, gyr = (to_bf16(a) for a in (x, w, gy))
    y_ref, gx_ref, gw_ref, gb_ref = reference(xr, wr, b, gyr, stride, padding, dilation, groups)
    y = PRIMS.forward(x, w, b, geom, "bfloat16")
    gx = PRIMS.backward_data(gy, w, shape[2:], geom, "bfloat16")
    gw, gb = PRIMS.backward_weight(x, gy, kernel, geom, True, "bfloat16")
    for ours, ref in ((y, y_ref), (gx, gx_ref), (gw, gw_ref), (gb, gb_ref)):
        close(ours, ref, scale=1e-5)


def test_load_follows_the_implementation_contract():
    """``load()`` gives the module (the three functions) as ``chainrule.backend.conv`` expects of an implementation."""
    impl, why = oc.load()
    assert impl is oc and why == ""


def test_bfloat16_availability_is_stated():
    """Either bfloat16 convolutions run here, or the reason names the instruction set found and the one needed."""
    assert BF16_WHY == "" or ("bfloat16" in BF16_WHY and "AVX-512" in BF16_WHY)


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to even), as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32).reshape(x.shape)


# ---- through the backend seam (chainrule.backend.conv) and the ops -------------------------------------------------


@pytest.fixture
def onednn_conv():
    from chainrule.backend import conv

    before = conv.info()["conv_requested"]
    conv.select_conv("onednn")
    yield conv
    conv.select_conv(before)


def test_the_seam_runs_float32_on_onednn_and_float64_on_numpy(onednn_conv):
    from chainrule.backend import _im2col

    geom = ConvGeometry((2, 1), ((1, 1), (0, 2)), (1, 2), 1)
    x, w, b, gy = problem((2, 3, 9, 8), 4, (3, 3), geom)
    assert onednn_conv.info()["conv"] == "onednn"
    created = PRIMS.created
    y32 = onednn_conv.conv2d_forward(x, w, b, geom)
    assert PRIMS.created == created + 1 and oc.is_channels_last(y32)
    x64, w64, b64, gy64 = (a.astype(np.float64) for a in (x, w, b, gy))
    created = PRIMS.created
    # float64 is computed by the NumPy path, bit for bit, and creates no oneDNN primitive
    np.testing.assert_array_equal(onednn_conv.conv2d_forward(x64, w64, b64, geom),
                                  _im2col.conv2d_forward(x64, w64, b64, geom))
    np.testing.assert_array_equal(onednn_conv.conv2d_backward_data(gy64, w64, (9, 8), geom),
                                  _im2col.conv2d_backward_data(gy64, w64, (9, 8), geom))
    for ours, theirs in zip(onednn_conv.conv2d_backward_weight(x64, gy64, (3, 3), geom, True),
                            _im2col.conv2d_backward_weight(x64, gy64, (3, 3), geom, True)):
        np.testing.assert_array_equal(ours, theirs)
    assert PRIMS.created == created


def test_a_conv_net_trains_on_onednn_like_pytorch_and_reuses_its_primitives(onednn_conv):
    """Two SGD steps of conv -> batch norm -> GELU -> max pool -> conv (groups) -> linear through chainrule's ops
    on oneDNN match PyTorch float64 on the same weights; the second step creates no primitive."""
    from chainrule import nn, optim
    from chainrule.nn import functional as cF

    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    labels = rng.integers(0, 5, size=4)
    ours = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, stride=2, groups=2, bias=False), nn.Flatten(), nn.Linear(32, 5))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.GELU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, stride=2, groups=2, bias=False),
                                 torch.nn.Flatten(), torch.nn.Linear(32, 5)).double()
    linear_w = "6.weight"  # chainrule's Linear keeps (in, out), CS231n's layout; PyTorch's is (out, in)
    theirs.load_state_dict({k: torch.tensor(np.asarray(v.T if k == linear_w else v, dtype=np.float64))
                            for k, v in ours.state_dict().items()})
    opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    for step in range(2):
        created = PRIMS.created
        opt.zero_grad()
        loss = cF.cross_entropy(ours(x), labels)
        loss.backward()
        opt.step()
        if step:
            assert PRIMS.created == created
        topt.zero_grad()
        tloss = F.cross_entropy(theirs(torch.tensor(x, dtype=torch.float64)), torch.tensor(labels))
        tloss.backward()
        topt.step()
        assert abs(float(loss.item()) - tloss.item()) <= 1e-5 * abs(tloss.item())
    for name, p in theirs.state_dict().items():
        mine = np.asarray(ours.state_dict()[name])
        close(mine.T if name == linear_w else mine, p.numpy(), scale=1e-4)


def test_every_bfloat16_plan_is_built_or_refused_with_the_reason():
    """The bf16 probe builds all three directions' plans (float32 in, bfloat16 operands by reorder): on a CPU with
    bfloat16 convolutions they are created, elsewhere each is refused as unimplemented (never another error)."""
    geom = ConvGeometry((2, 2), ((1, 0), (0, 1)), (1, 1), 2)
    for make in (lambda: PRIMS._forward_plan((2, 4, 6, 6), (4, 2, 3, 3), True, geom, "bfloat16"),
                 lambda: PRIMS._backward_data_plan((2, 4, 6, 6), (2, 4, 3, 3), (4, 2, 3, 3), geom, "bfloat16"),
                 lambda: PRIMS._backward_weight_plan((2, 4, 6, 6), (2, 4, 3, 3), (4, 2, 3, 3), True, geom,
                                                     "bfloat16")):
        try:
            plan = make()
        except oc.OneDNNError as e:
            assert BF16_WHY and e.status == 3  # dnnl_unimplemented
        else:
            assert not BF16_WHY
            oc._destroy(PRIMS.dnnl, plan)
