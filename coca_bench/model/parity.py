"""The same seeded random weights in open_clip's CoCa and ours: the fixture of every parity check (tests, bench).

open_clip's decoder vocabulary projection is ``torch.empty`` and never initialised (often zeros, sometimes garbage),
so it is set explicitly; then every weight is perturbed, so that no comparison can pass on a degenerate model.
"""

from __future__ import annotations

import torch

from .api import CocaModel, from_network
from .checkpoints import convert_open_clip_state, load_state
from .coca import CoCa
from .config import from_open_clip


def random_open_clip_coca(arch: str, seed: int = 0, scale: float = 0.02):
    """open_clip's CoCa ``arch`` with seeded random weights, the same whatever ran before in the process."""
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(arch)
        with torch.no_grad():
            projection = model.text_decoder.text_projection
            projection.copy_(torch.randn(projection.shape) * projection.shape[0] ** -0.5)
            for p in model.parameters():
                p.add_(torch.randn(p.shape) * (scale if p.dim() > 1 else 2.5 * scale))
    return model.eval()


def ours_from_open_clip(model, arch: str, name: str = "from-open_clip") -> CocaModel:
    """Our CoCa holding exactly the weights of an open_clip CoCa instance of architecture ``arch``."""
    import open_clip

    network = CoCa(from_open_clip(open_clip.get_model_config(arch))).eval()
    load_state(network, convert_open_clip_state(model.state_dict()), f"open_clip {arch}")
    return from_network(network, name=name)
