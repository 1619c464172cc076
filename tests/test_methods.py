"""The method registry and AtP*'s GradDrop (per head/MLP, not per layer)."""

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import ground_truth
from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods import EDGE_METHODS, METHODS, NODE_METHODS, Method, method
from rasp_compiler.interp.methods.base import component_deltas
from rasp_compiler.interp.pairs import make_pairs
from rasp_compiler.lib import LIBRARY


@pytest.fixture(scope="module")
def dyck():
    e = LIBRARY["dyck1"]
    m = compile_rasp_to_model(e.build(), e.vocab, 4)
    gt = ground_truth(m)
    dec = Decomposed(m)
    return m, dec, make_pairs(m, gt, "dyck1_bad", n_pairs=8, seed=3, dec=dec)


def test_registry():
    assert {"patching", "atp", "atp_qk", "atp_star"} <= set(NODE_METHODS)
    assert {"edge_patching", "eap", "eap_qk", "eap_star"} <= set(EDGE_METHODS)
    for name, m in METHODS.items():
        assert isinstance(m, Method) and m.name == name and m.level in ("node", "edge") and m.description
    with pytest.raises(ValueError, match="unknown method .nope.*known:.*patching"):
        method("nope")


def test_grad_drop_per_sublayer_on_dyck(dyck):
    """dyck1_bad: L0.H2/L0.H3 reach the output only through L0.MLP:negative then L1.H0, one
    component in each layer. Dropping a whole layer's input gradient (the old unit) kills
    that path in every drop, so AtP* used to score them ~1e-8; per head/MLP it does not."""
    import jax
    import jax.numpy as jnp

    m, dec, pairs = dyck
    patch = METHODS["patching"].run(dec, pairs, None).score
    star = METHODS["atp_star"].run(dec, pairs, None).score
    qk = METHODS["atp_qk"].run(dec, pairs, None).score
    _, _, delta = component_deltas(dec, pairs)
    ids, U = jnp.asarray(pairs.clean), jnp.asarray(pairs.U, jnp.float32)
    for head in ("L0.H2", "L0.H3"):
        assert patch[head] > 0.5
        # the old unit: every component of layer l dropped together -> nothing left
        for layer in range(m.config.n_layers):
            drop = jnp.asarray([float(c.layer == layer and c.kind not in ("embed", "unembed"))
                                for c in dec.components], jnp.float32)
            g = jax.grad(lambda d: (dec.run(ids, xp=jnp, out_delta={head: d}, grad_drop=drop) * U).sum())(
                jnp.zeros(delta[head].shape, jnp.float32))
            assert abs(float((np.asarray(g) * delta[head]).sum(axis=(1, 2)).mean())) < 1e-6
        # per sublayer: within a factor 2.2 of patching (first order: the MLP between is a
        # step, which a gradient sees only in part) and never below AtP+QK
        assert patch[head] / 2.2 <= star[head] <= 2.2 * patch[head] and star[head] >= qk[head] > 0
    # no inflation: wherever AtP+QK agrees with patching, AtP* agrees too (the paper's
    # sum / (L - 1) doubled last-layer nodes of this two-layer model)
    for n, p in patch.items():
        if p > 0.1 and abs(qk[n] - p) < 0.05 * p:
            assert star[n] == pytest.approx(p, rel=0.05), n
