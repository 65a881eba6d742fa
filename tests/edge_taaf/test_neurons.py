import pytest
import torch

from edge_taaf.neurons import LIFParams, lif_multistep, lif_reference


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid"])
def test_custom_bptt_equals_autograd_reference(reset, surrogate, engine):
    params = LIFParams(leak_shift=2, theta=1.0, reset=reset, surrogate=surrogate, slope=3.0)
    torch.manual_seed(0)
    current = (torch.randn(12, 5, 7, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    weights = torch.randn(12, 5, 7, dtype=torch.float64)
    ours = lif_multistep(current, params, engine)
    (ours * weights).sum().backward()
    grad_ours = current.grad.clone()
    current.grad = None
    ref = lif_reference(current, params)
    (ref * weights).sum().backward()
    assert torch.equal(ours, ref)
    assert ours.sum() > 0 and (1 - ours).sum() > 0
    torch.testing.assert_close(grad_ours, current.grad, rtol=1e-12, atol=1e-12)


def _run(current: torch.Tensor, params: LIFParams, engine: str, grad_out: torch.Tensor):
    """Spikes and dL/dI for L = sum(spikes * grad_out) through one engine."""
    leaf = current.detach().clone().requires_grad_()
    spikes = lif_multistep(leaf, params, engine)
    spikes.backward(grad_out)
    return spikes, leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("reset,surrogate", [("subtract", "atan"), ("zero", "fast_sigmoid"),
                                             ("subtract", "fast_sigmoid"), ("zero", "atan")])
def test_numba_engine_is_bit_identical_to_torch_engine(dtype, layout, reset, surrogate):
    """The CPU kernels do the torch engine's float operations in the same dtype and order: spikes
    and gradients must be EQUAL, not close, in float32 (the training dtype) as in float64; the
    output keeps the input's memory layout (conv output stays channels-last)."""
    params = LIFParams(leak_shift=3, theta=0.8, reset=reset, surrogate=surrogate, slope=2.5)
    g = torch.Generator().manual_seed(1)
    shape = (9, 4, 6, 5, 7)  # (T, B, C, H, W)
    current = torch.randn(shape, generator=g, dtype=dtype) * 0.7 + 0.3
    if layout == "channels_last":
        current = current.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, shape[:2])
    elif layout == "strided":
        current = torch.randn((9, 4, 6, 5, 14), generator=g, dtype=dtype)[..., ::2]
    grad_out = torch.randn(shape, generator=g, dtype=dtype).transpose(2, 4).contiguous().transpose(2, 4)
    spikes_n, grad_n = _run(current, params, "numba", grad_out)
    spikes_t, grad_t = _run(current, params, "torch", grad_out)
    assert 0 < int(spikes_n.sum()) < spikes_n.numel()
    assert torch.equal(spikes_n, spikes_t)
    assert torch.equal(grad_n, grad_t)
    if layout != "strided":
        assert spikes_n.stride() == current.stride()


def test_auto_engine_and_bad_engine():
    params = LIFParams()
    current = torch.rand(5, 3, 4) * 2
    assert torch.equal(lif_multistep(current, params), lif_multistep(current, params, "torch"))
    half = current.to(torch.bfloat16)  # not a kernel dtype: 'auto' runs the torch engine
    assert torch.equal(lif_multistep(half, params), lif_multistep(half, params, "torch"))
    with pytest.raises(ValueError, match="numba engine takes float32/float64 CPU tensors"):
        lif_multistep(half, params, "numba")
    with pytest.raises(ValueError, match="engine must be one of"):
        lif_multistep(current, params, "cuda")


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_leak_is_shift_leak_and_reset_subtracts(engine):
    params = LIFParams(leak_shift=1, theta=1.0)
    # constant input 0.6: u = 0.6, 0.9, 1.05 -> spike, v = 0.05, u = 0.625 ...
    current = torch.full((4, 1), 0.6, dtype=torch.float64)
    assert lif_multistep(current, params, engine).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert params.beta == 0.5


@pytest.mark.parametrize("field,value", [("leak_shift", 0), ("theta", -1.0), ("reset", "none"), ("surrogate", "relu")])
def test_bad_neuron_constants_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"neuron.{field}"):
        LIFParams(**{field: value})


def test_conv_network_gradients_identical_with_either_engine(monkeypatch):
    """A float32 conv -> conv -> dense spiking stack (channels-last CPU conv path, as trained): the
    Numba engine gives the same spikes and the same weight gradients, bit for bit, as the torch engine."""
    from functools import partial

    import edge_taaf.blocks as blocks

    params = LIFParams()
    torch.manual_seed(0)
    layers = torch.nn.ModuleList([blocks.SpikingConv(2, 6, 5, 2, params), blocks.SpikingConv(6, 8, 3, 2, params),
                                  blocks.SpikingDense(8 * 5 * 5, 10, params)])
    for layer in layers:
        weight = layer.conv.weight if hasattr(layer, "conv") else layer.fc.weight
        torch.nn.init.normal_(weight, 0.0, 0.3)  # 20-30 % firing rates
    x = (torch.rand(8, 6, 2, 18, 18) < 0.3).float()

    def run(engine):
        monkeypatch.setattr(blocks, "lif_multistep", partial(lif_multistep, engine=engine))
        layers.zero_grad(set_to_none=True)
        h = x
        for layer in layers[:2]:
            h = layer(h)
        out = layers[2](h.flatten(2))
        (out * torch.linspace(-1, 1, 10)).sum().backward()
        return out, [p.grad.clone() for p in layers.parameters()]

    out_n, grads_n = run("numba")
    out_t, grads_t = run("torch")
    assert 0 < int(out_n.sum()) < out_n.numel()
    assert torch.equal(out_n, out_t)
    assert all(torch.equal(a, b) for a, b in zip(grads_n, grads_t))
    assert all(float(g.abs().sum()) > 0 for g in grads_n)


def test_leak_shift_16_is_integrate_and_fire_and_17_is_refused():
    """The float reading of the accelerator's LEAK_OFF: beta = 1 exactly (a membrane keeps what it got)."""
    assert LIFParams(leak_shift=16).beta == 1.0 and LIFParams(leak_shift=15).beta == 1.0 - 2.0 ** -15
    current = torch.tensor([[[0.6]], [[0.0]], [[0.0]], [[0.5]]])
    spikes = lif_multistep(current, LIFParams(leak_shift=16, theta=1.0))
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0]
    for k in (0, 17):
        with pytest.raises(ValueError, match=rf"neuron.leak_shift must be an integer in 1..16 \(16: no leak, "
                                             rf"integrate-and-fire\), got {k}"):
            LIFParams(leak_shift=k)
