"""Unit tests of the XANE(3) building blocks (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from e3nn import o3

from model_core.config import EnergyGrid
from model_core.nn.blocks import DepthwiseTensorProduct, InteractionBlock
from model_core.nn.norm import EquivariantLayerNorm
from model_core.nn.pooling import AbsorberPooling
from model_core.nn.radial import BesselBasis, GaussianBasis, RadialEmbedding, cosine_cutoff
from model_core.nn.readout import GaussianBasisSpectrum

from .graphs import random_graph

F64 = torch.float64
TOL = dict(rtol=1e-6, atol=1e-6)
HIDDEN = o3.Irreps("6x0e+4x1o+3x2e")
SH = o3.Irreps.spherical_harmonics(2)


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


# --- radial ---------------------------------------------------------------

def test_cosine_cutoff_values():
    r = torch.tensor([0.0, 2.5, 5.0, 6.0])
    torch.testing.assert_close(cosine_cutoff(r, 5.0), torch.tensor([1.0, 0.5, 0.0, 0.0]))


def test_bessel_basis_formula():
    r = torch.tensor([0.7, 2.0, 4.9])
    basis = BesselBasis(5.0, 4)(r)
    n = torch.arange(1, 5)
    expected = math.sqrt(2 / 5.0) * torch.sin(n * math.pi * r[:, None] / 5.0) / r[:, None]
    torch.testing.assert_close(basis, expected)


def test_radial_embedding_vanishes_at_cutoff():
    for kind in ("bessel", "gaussian"):
        # raw form: the basis itself carries the cutoff
        basis, cutoff = RadialEmbedding(5.0, 8, kind, normalize=False)(torch.tensor([1.0, 5.0, 5.5]))
        assert basis.shape == (3, 8)
        assert torch.all(basis[1:] == 0) and torch.all(cutoff[1:] == 0)
        assert torch.all(basis[0] != 0)
        # normalized form: the cutoff (applied to the tensor-product weights) vanishes
        basis, cutoff = RadialEmbedding(5.0, 8, kind)(torch.tensor([1.0, 5.0, 5.5]))
        assert torch.all(cutoff[1:] == 0) and cutoff[0] > 0
    assert GaussianBasis(5.0, 8)(torch.tensor([0.0]))[0, 0] == 1.0


def test_normalized_radial_basis_has_unit_rms():
    r = torch.linspace(1.0, 5.0, 2001, dtype=torch.float64)
    for kind in ("bessel", "gaussian"):
        basis, _ = RadialEmbedding(5.0, 8, kind).double()(r)
        rms = basis.square().mean(dim=0).sqrt()
        torch.testing.assert_close(rms, torch.ones(8, dtype=torch.float64), atol=0.02, rtol=0)


# --- tensor product ---------------------------------------------------------

def _e3nn_reference(irreps_in: o3.Irreps, targets: o3.Irreps) -> o3.TensorProduct:
    target_irs = {ir for _, ir in targets}
    outs, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(SH):
            for ir_out in ir_in * ir_sh:
                if ir_out in target_irs:
                    instructions.append((i, j, len(outs), "uvu", True))
                    outs.append((mul, ir_out))
    return o3.TensorProduct(irreps_in, SH, o3.Irreps(outs), instructions,
                            shared_weights=False, internal_weights=False)


@pytest.mark.parametrize("irreps_in", ["5x0e", "6x0e+4x1o+3x2e", "2x1o+3x0e"])
def test_depthwise_tensor_product_matches_e3nn(irreps_in):
    irreps_in = o3.Irreps(irreps_in)
    tp = DepthwiseTensorProduct(irreps_in, SH, HIDDEN)
    ref = _e3nn_reference(irreps_in, HIDDEN)
    assert tp.irreps_out == ref.irreps_out and tp.weight_numel == ref.weight_numel
    x = torch.randn(40, irreps_in.dim)
    sh = o3.spherical_harmonics(SH, torch.randn(40, 3), normalize=True, normalization="component")
    w = torch.randn(40, tp.weight_numel)
    torch.testing.assert_close(tp.to_irreps_layout(tp(x, sh, w)), ref(x, sh, w))


@pytest.mark.parametrize("irreps_in", ["5x0e", "6x0e+4x1o+3x2e"])
def test_depthwise_tensor_product_without_harmonics_is_y0_equal_one(irreps_in):
    """sh=None (l_max 0: Y_0 = 1 on every edge) gives the product with a column of ones."""
    irreps_in = o3.Irreps(irreps_in)
    tp = DepthwiseTensorProduct(irreps_in, "0e", irreps_in)
    x, w = torch.randn(30, irreps_in.dim), torch.randn(30, tp.weight_numel)
    torch.testing.assert_close(tp(x, None, w), tp(x, torch.ones(30, 1), w))
    with pytest.raises(ValueError, match="0e"):
        DepthwiseTensorProduct(irreps_in, SH, HIDDEN)(x, None, torch.randn(30, 1))


# --- interaction block ----------------------------------------------------

def _block_inputs(irreps_in: o3.Irreps, seed: int = 3):
    graph = random_graph(seed, n_nodes=10)
    radial = RadialEmbedding(5.0, 6)
    x = torch.randn(graph.num_nodes, irreps_in.dim)
    return graph, radial, x


def _run_block(block, graph, radial, x, rotation=None):
    vec = graph.edge_vec if rotation is None else graph.edge_vec @ rotation.T
    if rotation is not None:
        x = x @ block.irreps_in.D_from_matrix(rotation).T
    sh = o3.spherical_harmonics(SH, vec, normalize=True, normalization="component")
    basis, cutoff = radial(vec.norm(dim=-1))
    return block(x, graph.edge_index[0], graph.edge_index[1], sh, basis, cutoff)


@pytest.mark.parametrize("irreps_in", ["6x0e", "6x0e+4x1o+3x2e"], ids=["first", "residual"])
@pytest.mark.parametrize("options", [dict(), dict(use_gate=False, use_gated_residual=False),
                                     dict(use_layer_norm=False), dict(tensor_product="full")],
                         ids=["default", "no_gate_plain_residual", "no_norm", "full_tp"])
@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "reflection"])
def test_interaction_block_equivariance(irreps_in, options, improper):
    irreps_in = o3.Irreps(irreps_in)
    block = InteractionBlock(irreps_in, HIDDEN, SH, num_radial=6, radial_hidden=8, **options)
    assert block.irreps_in == irreps_in and block.irreps_out == HIDDEN
    graph, radial, x = _block_inputs(irreps_in)
    rotation = o3.rand_matrix()
    if improper:
        rotation = -rotation
    out = _run_block(block, graph, radial, x)
    out_rot = _run_block(block, graph, radial, x, rotation)
    assert out.shape == (graph.num_nodes, HIDDEN.dim)
    expected = out @ HIDDEN.D_from_matrix(rotation).T
    torch.testing.assert_close(out_rot, expected, **TOL)
    # the l = 1 part specifically transforms with D^1(R) (times det R for 1o)
    vec = slice(6, 6 + 12)
    d1 = o3.Irreps("1o").D_from_matrix(rotation)
    torch.testing.assert_close(out_rot[:, vec].reshape(-1, 4, 3), out[:, vec].reshape(-1, 4, 3) @ d1.T, **TOL)
    assert out[:, vec].abs().max() > 1e-3  # the l = 1 output is not trivially zero


def test_block_residual_flags():
    first = InteractionBlock("6x0e", HIDDEN, SH, 6, 8)
    later = InteractionBlock(HIDDEN, HIDDEN, SH, 6, 8)
    plain = InteractionBlock(HIDDEN, HIDDEN, SH, 6, 8, use_gated_residual=False)
    assert not first.has_residual and later.use_gated_residual
    assert plain.has_residual and not plain.use_gated_residual and plain.residual_gate is None


def test_messages_vanish_beyond_cutoff():
    """An edge longer than r_max contributes a zero message (only the mean's count changes)."""
    block = InteractionBlock(HIDDEN, HIDDEN, SH, 6, 8)
    radial = RadialEmbedding(5.0, 6)
    vec = torch.tensor([[5.0, 0.0, 0.0]])
    sh = o3.spherical_harmonics(SH, vec, normalize=True, normalization="component")
    basis, cutoff = radial(vec.norm(dim=-1))
    weights = block.radial_mlp(basis) * cutoff.unsqueeze(-1)
    assert torch.all(weights == 0)
    x = torch.randn(1, HIDDEN.dim)
    assert torch.all(block.tp(x, sh, weights) == 0)


# --- layer norm -------------------------------------------------------------

def test_equivariant_layer_norm_statistics_and_equivariance():
    irreps = o3.Irreps("6x0e+3x0e+4x1o+3x2e")
    norm = EquivariantLayerNorm(irreps)
    x = torch.randn(7, irreps.dim) * 5 + 1
    y = norm(x)
    torch.testing.assert_close(y[:, :9].mean(1), torch.zeros(7), atol=1e-8, rtol=0)
    torch.testing.assert_close(y[:, :9].var(1, unbiased=False), torch.ones(7), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, 9:21].pow(2).mean(1), torch.ones(7), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, 21:].pow(2).mean(1), torch.ones(7), atol=1e-4, rtol=0)
    rotation = -o3.rand_matrix()
    d = irreps.D_from_matrix(rotation)
    torch.testing.assert_close(norm(x @ d.T), y @ d.T, **TOL)
    n_params = sum(p.numel() for p in norm.parameters())
    assert n_params == 2 * 9 + 4 + 3  # LayerNorm scale+shift, per-channel l>0 scales


# --- pooling / readout ------------------------------------------------------

def test_pooling_norm_features():
    pool = AbsorberPooling(HIDDEN, 8)
    x = torch.randn(4, HIDDEN.dim)
    mask = torch.tensor([True, False, False, False])
    readout, attention = pool(x, mask, torch.zeros(4, dtype=torch.long), 1)
    assert readout.shape == (1, pool.out_dim) and pool.out_dim == 2 * 6 + 4 + 3
    torch.testing.assert_close(readout[0, 12:16], x[0, 6:18].reshape(4, 3).norm(dim=-1))
    torch.testing.assert_close(readout[0, 16:], x[0, 18:].reshape(3, 5).norm(dim=-1))
    torch.testing.assert_close(readout[0, 6:12], (attention[1:, None] * x[1:, :6]).sum(0))


def test_gaussian_basis_spectrum_formula():
    grid = EnergyGrid(-30.0, 100.0, 150)
    head = GaussianBasisSpectrum(grid, 40, (0.1, 0.5, 1.0, 2.0, 4.0))
    assert head.num_basis == 200 and head.num_coefficients == 201
    torch.testing.assert_close(head.widths[40:80], torch.full((40,), 0.5 * 130 / 40))
    torch.testing.assert_close(head.centres[:40], torch.linspace(-30, 100, 40))
    coeff = torch.randn(2, 201)
    e = torch.as_tensor(grid.energy_ev)
    gauss = torch.exp(-(e[None] - head.centres[:, None]) ** 2 / (2 * head.widths[:, None] ** 2))
    expected = coeff[:, :200] @ gauss + coeff[:, 200:] * torch.sigmoid(e / 2.0)
    torch.testing.assert_close(head(coeff), expected)
    no_bg = GaussianBasisSpectrum(grid, 40, (1.0,), use_background=False)
    assert no_bg.num_coefficients == 40
