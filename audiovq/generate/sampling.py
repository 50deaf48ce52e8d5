"""The sampling rule moved to audiovq/nn/sampling.py (nn/ imports nothing from generate/).
This name stays for numba's on-disk cache: an index written before the move pickled the
kernels' argument types under it, and numba unpickles an index before it can tell it is stale."""
from ..nn.sampling import *  # noqa: F401,F403
from ..nn.sampling import CATEGORICAL, MIXTURE, U_CLIP, SamplerSpec  # noqa: F401
