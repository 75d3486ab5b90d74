"""The one home of family rules: every diffusers video VAE family the study covers, and how to load it.

No other module names a family (tests/test_architecture.py checks); it imports nothing from the
package above the foundation modules, so it knows nothing of decoding or scoring.
"""

from vaestudy.registry.embedded import (
    EMBEDDED,
    EMBEDDED_ALIASES,
    MODEL_OPTIONS,
    WEIGHTS_DIR,
    EmbeddedModel,
    build_model,
    decoder_attention,
    embedded_card,
    embedded_config,
    embedded_entry,
    freeze_decoder_attention,
    load_embedded,
    moments_conv,
    option_refusal,
    option_takers,
)
from vaestudy.registry.families import DEFAULT_FAMILY, FAMILIES, ROLES, exemplar, family_of, first_family, get_family
from vaestudy.registry.family import VAEFamily
from vaestudy.registry.load import (
    OFFLINE_HELP,
    WEIGHT_SOURCES,
    WeightsUnavailable,
    check_weight_source,
    count_parameters,
    load_vae,
)
