"""The one home of family rules: every diffusers video VAE family the study covers, and how to load it.

No other module names a family (tests/test_architecture.py checks); it imports nothing from the
package above the foundation modules, so it knows nothing of decoding or scoring.
"""

from vaestudy.registry.embedded import EMBEDDED, WEIGHTS_DIR, EmbeddedModel, build_model, embedded_card, load_embedded
from vaestudy.registry.families import FAMILIES, family_of, get_family
from vaestudy.registry.family import VAEFamily
from vaestudy.registry.load import (
    OFFLINE_HELP,
    WEIGHT_SOURCES,
    WeightsUnavailable,
    check_weight_source,
    count_parameters,
    load_vae,
)
