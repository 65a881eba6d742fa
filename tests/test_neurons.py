import pytest
import torch

from edge_taaf.neurons import LIFParams, lif_multistep, lif_reference


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid"])
def test_custom_bptt_equals_autograd_reference(reset, surrogate):
    params = LIFParams(leak_shift=2, theta=1.0, reset=reset, surrogate=surrogate, slope=3.0)
    torch.manual_seed(0)
    current = (torch.randn(12, 5, 7, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    weights = torch.randn(12, 5, 7, dtype=torch.float64)
    ours = lif_multistep(current, params)
    (ours * weights).sum().backward()
    grad_ours = current.grad.clone()
    current.grad = None
    ref = lif_reference(current, params)
    (ref * weights).sum().backward()
    assert torch.equal(ours, ref)
    assert ours.sum() > 0 and (1 - ours).sum() > 0
    torch.testing.assert_close(grad_ours, current.grad, rtol=1e-12, atol=1e-12)


def test_leak_is_shift_leak_and_reset_subtracts():
    params = LIFParams(leak_shift=1, theta=1.0)
    # constant input 0.6: u = 0.6, 0.9, 1.05 -> spike, v = 0.05, u = 0.625 ...
    current = torch.full((4, 1), 0.6, dtype=torch.float64)
    assert lif_multistep(current, params).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert params.beta == 0.5


@pytest.mark.parametrize("field,value", [("leak_shift", 0), ("theta", -1.0), ("reset", "none"), ("surrogate", "relu")])
def test_bad_neuron_constants_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"neuron.{field}"):
        LIFParams(**{field: value})
